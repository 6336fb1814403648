package callout

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// The data parts other than RAWDATA (docs/profile.md 4, 6): the processor
// sends what was negotiated, and the server answers each part as that part,
// never as RAWDATA. MessageAdapter services see a Message built from what
// came: the header (ALLHEADERS, or the SINGLEHEADERS fields) with the body
// (BODY) as one message, and each SECTIONS entity as a message of its own.

// dataInst is one instance of a data part the processor sent.
type dataInst struct {
	d   ocpsmtp.Data // the parameters of its first DUM (part, index, Allow)
	off int64        // original offset of its first octet
	sp  *Spool
	msg *Message // sp's content once the original message ended
}

// addPart collects one DUM of a data part other than RAWDATA.
func (t *txn) addPart(d ocpsmtp.Data, off int64, payload []byte) error {
	n := len(t.insts)
	if n == 0 || t.insts[n-1].d.Part != d.Part || t.insts[n-1].d.Index != d.Index {
		t.insts = append(t.insts, &dataInst{d: d, off: off, sp: NewSpool(t.s.Spool)})
		n++
	}
	_, err := t.insts[n-1].sp.Write(payload)
	return err
}

// discardParts releases what addPart collected.
func (t *txn) discardParts() {
	for _, in := range t.insts {
		if in.msg != nil {
			in.msg.Close()
		} else {
			in.sp.Discard()
		}
	}
	t.insts = nil
}

// parts runs the chain on the data parts other than RAWDATA and answers
// them. It reports whether the message was refused.
func (t *txn) parts(ctx context.Context) error {
	defer t.discardParts()
	var hdr []*dataInst
	var body *dataInst
	var secs []*dataInst
	for _, in := range t.insts {
		m, err := in.sp.Message()
		if err != nil {
			return err
		}
		in.msg = m
		switch in.d.Part {
		case ocpsmtp.PartALLHEADERS, ocpsmtp.PartSINGLEHEADERS:
			hdr = append(hdr, in)
		case ocpsmtp.PartBODY:
			body = in
		case ocpsmtp.PartSECTIONS:
			secs = append(secs, in)
		}
	}
	if len(hdr) > 0 || body != nil {
		refused, err := t.whole(ctx, hdr, body)
		if err != nil || refused {
			return err
		}
	}
	seen := map[string]bool{}
	for _, sec := range secs {
		refused, err := t.section(ctx, sec, seen)
		if err != nil || refused {
			return err
		}
	}
	return nil
}

// whole adapts the header parts and BODY as one message.
func (t *txn) whole(ctx context.Context, hdr []*dataInst, body *dataInst) (refused bool, err error) {
	sp := NewSpool(t.s.Spool)
	var origHdr []byte
	switch {
	case len(hdr) == 1 && hdr[0].d.Part == ocpsmtp.PartALLHEADERS:
		origHdr, err = hdr[0].msg.Bytes(0, hdr[0].msg.Size())
	case len(hdr) > 0:
		for _, in := range hdr {
			b, err := in.msg.Bytes(0, in.msg.Size())
			if err != nil {
				return false, err
			}
			origHdr = append(origHdr, b...)
		}
		origHdr = append(origHdr, "\r\n"...)
	default:
		origHdr = []byte("\r\n")
	}
	if err != nil {
		return false, err
	}
	if _, err := sp.Write(origHdr); err != nil {
		sp.Discard()
		return false, err
	}
	if body != nil {
		if _, err := io.Copy(sp, body.msg.NewReader()); err != nil {
			sp.Discard()
			return false, err
		}
	}
	msg, err := sp.Message()
	if err != nil {
		return false, err
	}
	defer msg.Close()
	all := append(append([]*dataInst(nil), hdr...), body)
	if body == nil {
		all = all[:len(hdr)]
	}
	dec, err := t.chain.adaptMessage(ctx, t.tx, msg, all[0].d.Part)
	if err != nil {
		return false, err
	}
	if dec.Action == ActionRefuse {
		return true, t.refuse(ctx, all, dec)
	}
	a := &answerer{t: t, first: all[0]}
	a.params, a.rest = t.annotations(all[0].d, dec)
	newHdr, newBody := origHdr, io.Reader(nil)
	var newBodySize int64 = -1
	if dec.Action == ActionReplace {
		defer dec.Message.Close()
		t.tx.Logger.Info("message replaced", "size", dec.Message.Size(), "reason", dec.Reason)
		n, err := headerEnd(dec.Message)
		if err != nil {
			return false, err
		}
		if newHdr, err = dec.Message.Bytes(0, n); err != nil {
			return false, err
		}
		newBody, newBodySize = dec.Message.Range(n, dec.Message.Size()), dec.Message.Size()-n
	}
	for _, in := range hdr {
		if !t.adaptive(in.d.Part, in.d) {
			if !bytes.Equal(newHdr, origHdr) {
				t.tx.Logger.Warn("header is informative: change not carried out", "part", string(in.d.Part))
			}
			continue
		}
		if in.d.Part == ocpsmtp.PartALLHEADERS {
			if err := a.content(ctx, in, newHdr); err != nil {
				return false, err
			}
			continue
		}
	}
	if len(hdr) > 0 && hdr[0].d.Part == ocpsmtp.PartSINGLEHEADERS && t.adaptive(ocpsmtp.PartSINGLEHEADERS, hdr[0].d) {
		if err := a.fields(ctx, hdr, newHdr); err != nil {
			return false, err
		}
	}
	if body != nil && t.adaptive(ocpsmtp.PartBODY, body.d) {
		if newBody == nil {
			err = a.keep(ctx, body)
		} else {
			err = a.stream(ctx, body, newBody, newBodySize)
		}
		if err != nil {
			return false, err
		}
	} else if newBody != nil && newBodySize > 0 && (body == nil || !sameContent(body.msg, dec.Message.Range(int64(len(newHdr)), dec.Message.Size()), newBodySize)) {
		t.tx.Logger.Warn("body not negotiated as adaptive: change not carried out")
	}
	return false, a.finish(ctx)
}

// section adapts one SECTIONS entity as a message of its own. Header
// fields the services add are sent once for the whole message (seen).
func (t *txn) section(ctx context.Context, sec *dataInst, seen map[string]bool) (refused bool, err error) {
	msg := sec.msg
	prefixed := false
	if !looksLikeEntity(msg) {
		// A body that is not multipart is section 1, its bytes are the
		// body alone: give the services an empty header.
		sp := NewSpool(t.s.Spool)
		sp.WriteString("\r\n")
		if _, err := io.Copy(sp, msg.NewReader()); err != nil {
			sp.Discard()
			return false, err
		}
		if msg, err = sp.Message(); err != nil {
			return false, err
		}
		defer msg.Close()
		prefixed = true
	}
	dec, err := t.chain.adaptMessage(ctx, t.tx, msg, ocpsmtp.PartSECTIONS)
	if err != nil {
		return false, err
	}
	if dec.Action == ActionRefuse {
		return true, t.refuse(ctx, []*dataInst{sec}, dec)
	}
	var fresh []Field
	for _, f := range dec.Headers {
		if k := strings.ToLower(f.String()); !seen[k] {
			seen[k] = true
			fresh = append(fresh, f)
		}
	}
	dec.Headers = fresh
	a := &answerer{t: t, first: sec}
	a.params, a.rest = t.annotations(sec.d, dec)
	if dec.Action == ActionReplace && t.adaptive(ocpsmtp.PartSECTIONS, sec.d) {
		defer dec.Message.Close()
		var off int64
		if prefixed {
			off = 2
			if n, _ := headerEnd(dec.Message); n != 2 {
				off = 0 // the services added header fields: they go in as body
			}
		}
		size := dec.Message.Size() - off
		if !sameContent(sec.msg, dec.Message.Range(off, dec.Message.Size()), size) {
			if err := a.stream(ctx, sec, dec.Message.Range(off, dec.Message.Size()), size); err != nil {
				return false, err
			}
		}
	} else if dec.Action == ActionReplace {
		dec.Message.Close()
		t.tx.Logger.Warn("SECTIONS is informative: change not carried out")
	}
	return false, a.finish(ctx)
}

// refuse answers a refused message with SMTP-Error on the first instance
// that allows it.
func (t *txn) refuse(ctx context.Context, insts []*dataInst, dec Decision) error {
	for _, in := range insts {
		if !in.d.Allows(ocpsmtp.AllowSMTPError) {
			continue
		}
		t.result = "refused"
		t.tx.Logger.Info("message refused", "reply", dec.Reply.String(), "reason", dec.Reason)
		params := ocpsmtp.Data{Part: in.d.Part, Index: in.d.Index, SMTPError: dec.Reply.String()}.Params()
		if dec.Advice != "" && in.d.Allows(ocpsmtp.AllowAdvice) {
			params = append(params, ocp.NewParam(ocpsmtp.ParamAdvice, ocp.Atom(dec.Advice)))
		}
		_, err := t.otx.Send(ctx, params, []byte{})
		return err
	}
	return fmt.Errorf("callout: message refused by %s, but the processor does not allow SMTP-Error", t.tx.Service)
}

// answerer sends the answers to the instances of one adaptation: the
// first answer message carries the annotations (Advice, the first
// Add-Header), the other fields follow in annotation DUMs.
type answerer struct {
	t      *txn
	first  *dataInst
	params []ocp.Param
	rest   []Field
	sent   bool
}

// take returns the annotation parameters for the next answer message.
func (a *answerer) take() []ocp.Param {
	p := a.params
	a.params = nil
	a.sent = true
	return p
}

// keep answers in unchanged: a DUY of it when kept, else an echo.
func (a *answerer) keep(ctx context.Context, in *dataInst) error {
	if a.t.kept(in.off, in.msg.Size()) {
		return a.t.otx.SendDUY(in.off, in.msg.Size(), a.take()...)
	}
	return a.stream(ctx, in, in.msg.NewReader(), in.msg.Size())
}

// content answers in with b (unchanged when equal to the original).
func (a *answerer) content(ctx context.Context, in *dataInst, b []byte) error {
	if sameContent(in.msg, bytes.NewReader(b), int64(len(b))) {
		return a.keep(ctx, in)
	}
	return a.stream(ctx, in, bytes.NewReader(b), int64(len(b)))
}

// stream answers in with size octets from r, in DUMs of sendChunk octets
// (one empty DUM deletes it).
func (a *answerer) stream(ctx context.Context, in *dataInst, r io.Reader, size int64) error {
	base := ocpsmtp.Data{Part: in.d.Part, Index: in.d.Index}
	params := append(base.Params(), a.take()...)
	buf := make([]byte, min(size, sendChunk))
	for sent := false; ; sent = true {
		n, err := io.ReadFull(r, buf)
		if n > 0 || !sent {
			if _, err := a.t.otx.Send(ctx, params, append([]byte(nil), buf[:n]...)); err != nil {
				return err
			}
			params = base.Params()
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF || len(buf) == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fields answers the SINGLEHEADERS instances from the adapted header: the
// k-th field called N among those sent is the k-th field called N in the
// adapted header. An unchanged field is not answered (it stays), a missing
// one is deleted (an empty DUM), a changed one replaced; fields beyond
// those go in with Add-Header.
func (a *answerer) fields(ctx context.Context, insts []*dataInst, newHdr []byte) error {
	adapted := splitFields(newHdr)
	used := make([]bool, len(adapted))
	count := map[string]int{}
	for _, in := range insts {
		orig, err := in.msg.Bytes(0, in.msg.Size())
		if err != nil {
			return err
		}
		name := strings.ToLower(fieldName(orig))
		count[name]++
		k, match := count[name], -1
		for i, f := range adapted {
			if strings.EqualFold(fieldName(f), name) {
				if k--; k == 0 {
					match = i
					break
				}
			}
		}
		switch {
		case match < 0:
			err = a.stream(ctx, in, bytes.NewReader(nil), 0)
		case bytes.Equal(adapted[match], orig):
			used[match] = true
		default:
			used[match] = true
			err = a.stream(ctx, in, bytes.NewReader(adapted[match]), int64(len(adapted[match])))
		}
		if err != nil {
			return err
		}
	}
	for i, f := range adapted {
		if used[i] {
			continue
		}
		name, value, err := ocpsmtp.ParseHeaderField(strings.TrimSuffix(string(f), "\r\n"))
		if err != nil {
			return fmt.Errorf("callout: adapted header field: %w", err)
		}
		f := Field{Name: name, Value: strings.TrimLeft(value, " \t")}
		if err := f.Validate(); err != nil {
			a.t.tx.Logger.Warn("added header field cannot be carried; dropped", "field", name, "err", err)
			continue
		}
		a.rest = append(a.rest, f)
	}
	return nil
}

// finish sends what is left of the annotations.
func (a *answerer) finish(ctx context.Context) error {
	if len(a.params) > 0 {
		params := append(ocpsmtp.Data{Part: a.first.d.Part, Index: a.first.d.Index}.Params(), a.take()...)
		if _, err := a.t.otx.Send(ctx, params, []byte{}); err != nil {
			return err
		}
	}
	if len(a.rest) > 0 && !a.first.d.Allows(ocpsmtp.AllowAddHeader) {
		a.t.tx.Logger.Warn("processor does not allow Add-Header here; fields dropped", "part", string(a.first.d.Part), "fields", len(a.rest))
		return nil
	}
	return a.t.annotate(ctx, a.first.d.Part, a.rest)
}

// headerEnd returns the length of m's header section with its empty line.
func headerEnd(m *Message) (int64, error) {
	br := bufio.NewReader(m.NewReader())
	var n int64
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			n += int64(len(line))
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				n += int64(len(line))
			}
			if err != nil {
				return m.Size(), nil
			}
			continue
		}
		n += int64(len(line))
		if string(line) == "\r\n" || string(line) == "\n" {
			return n, nil
		}
		if err != nil {
			return m.Size(), nil // no empty line: all header
		}
	}
}

// splitFields cuts a header section (with its empty line) into fields,
// each with its continuation lines and final CRLF.
func splitFields(h []byte) [][]byte {
	var out [][]byte
	for len(h) > 0 {
		i := bytes.IndexByte(h, '\n')
		if i < 0 {
			i = len(h) - 1
		}
		line := h[:i+1]
		h = h[i+1:]
		switch {
		case string(line) == "\r\n" || string(line) == "\n":
			return out
		case (line[0] == ' ' || line[0] == '\t') && len(out) > 0:
			out[len(out)-1] = append(out[len(out)-1], line...)
		default:
			out = append(out, append([]byte(nil), line...))
		}
	}
	return out
}

// fieldName returns the name of a header field line.
func fieldName(f []byte) string {
	name, _, _ := strings.Cut(string(f), ":")
	return strings.TrimSpace(name)
}

// looksLikeEntity reports whether m starts with a header section (a field
// line or the empty line), as a MIME entity does.
func looksLikeEntity(m *Message) bool {
	b, _ := m.Bytes(0, min(m.Size(), 1000))
	if bytes.HasPrefix(b, []byte("\r\n")) || bytes.HasPrefix(b, []byte("\n")) {
		return true
	}
	i := bytes.IndexByte(b, ':')
	return i > 0 && ocpsmtp.ValidFieldName(b[:i])
}

// sameContent reports whether r yields exactly m's bytes (size octets).
func sameContent(m *Message, r io.Reader, size int64) bool {
	if size != m.Size() {
		return false
	}
	a, b := bufio.NewReader(m.NewReader()), bufio.NewReader(r)
	ba, bb := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, _ := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil {
			return true
		}
	}
}
