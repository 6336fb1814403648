package builtin

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// maxSpamdReply bounds spamd's answer body (a report or a header section).
const maxSpamdReply = 256 << 10

// maxSpamdField bounds the value of a field taken from spamd's answer (the
// report, the fields of its rewritten header): Sendmail's
// MaxHeadersLength is 32 KiB for the whole header.
const maxSpamdField = 8 << 10

// capFolded returns the folded value v cut at its last fold before max
// bytes, with "[...]" on a last line, or v when it is short enough.
func capFolded(v string, max int) string {
	const more = "\r\n\t[...]"
	if len(v) <= max {
		return v
	}
	cut := strings.LastIndex(v[:max-len(more)], "\r\n")
	if cut <= 0 {
		return "[...]"
	}
	return v[:cut] + more
}

// Spamd scans the message with SpamAssassin's spamd (kind spamd), speaking
// SPAMC/1.5 itself instead of forking spamc, and acts on the score with
// amavisd-new's thresholds: at tag it adds the X-Spam-* fields, at tag2 it
// also marks the message (X-Spam-Flag: YES, a subject prefix and/or
// quarantine), at kill it rejects or quarantines. The X-Spam-Status and
// X-Spam-Level fields are written by this service from its own
// thresholds, not taken from spamd (whose required_score is ignored).
// Incoming fields with the configured prefix are always removed first,
// whatever the verdict, so a forged X-Spam-Status never reaches the
// mailbox. spamd closes its connection after each answer: connections are
// not reused, their number is bounded instead (max_connections).
type Spamd struct {
	o       *mapping.Spamd
	backend *callout.Backend
	subject *SubjectTag
}

// NewSpamd returns the service for o.
func NewSpamd(o *mapping.Spamd) (*Spamd, error) {
	b, err := callout.NewBackend(callout.BackendOptions{
		Name: "spamd", Address: o.Backend.Address, Timeout: o.Backend.Timeout, MaxConns: o.Backend.MaxConns,
	})
	if err != nil {
		return nil, err
	}
	return &Spamd{o: o, backend: b, subject: NewSubjectTag(&mapping.SubjectTag{Prefix: o.SubjectPrefix})}, nil
}

// Needs implements Service: RAWDATA is adapted.
func (s *Spamd) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}

// CheckHealth implements callout.HealthReporter with spamd's PING.
func (s *Spamd) CheckHealth(ctx context.Context) []callout.BackendHealth {
	c, err := s.backend.Conn(ctx)
	if err == nil {
		_, err = io.WriteString(c, "PING SPAMC/1.5\r\n\r\n")
		if err == nil {
			var line []byte
			line, err = callout.ReadLine(bufio.NewReader(c), maxSpamdLine)
			if err == nil && !bytes.Contains(line, []byte("PONG")) {
				err = fmt.Errorf("PING answered %q", truncate(string(line), 60))
			}
		}
		c.Release(false, err)
	}
	return []callout.BackendHealth{s.backend.Health()}
}

// AdaptMessage implements MessageAdapter.
func (s *Spamd) AdaptMessage(ctx context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	root, err := msg.Root()
	if err != nil {
		return callout.Decision{}, err
	}
	scanned, n, err := withoutPrefixed(msg, root, s.o.HeaderPrefix)
	if err != nil {
		return callout.Decision{}, err
	}
	if n > 0 {
		tx.Log().Info("spamd: incoming fields removed", "prefix", s.o.HeaderPrefix, "fields", n)
	}
	if msg.Size() > s.o.MaxSize {
		return notScanned(tx, "spamd", s.o.HeaderPrefix+"Scanned", msg, scanned, s.o.MaxSize), nil
	}
	result := func(d callout.Decision) callout.Decision {
		if d.Action == callout.ActionKeep && scanned != msg {
			d.Action, d.Message = callout.ActionReplace, scanned
		} else if scanned != msg && d.Message != scanned {
			scanned.Close()
		}
		return d
	}
	rep, err := s.scan(ctx, scanned)
	if err != nil {
		if scanned != msg {
			scanned.Close()
		}
		return callout.Decision{}, err
	}
	score := rep.Score
	tx.Log().Debug("spamd: scanned", "score", score, "tag", s.o.Tag, "tag2", s.o.Tag2, "kill", s.o.Kill) // the reason is in the transaction's line
	if score >= s.o.Kill && s.o.KillAction == "reject" {
		if scanned != msg {
			scanned.Close()
		}
		return callout.RefuseWith(s.o.Reply).
			Because(fmt.Sprintf("spamd: score %.1f, at or above kill %.1f", score, s.o.Kill)), nil
	}
	if score < s.o.Tag {
		return result(callout.Keep().Because(fmt.Sprintf("spamd: score %.1f, below tag %.1f", score, s.o.Tag))), nil
	}
	spam := score >= s.o.Tag2
	d := callout.Keep()
	for _, f := range s.fields(rep, spam) {
		d = d.WithHeader(f.Name, f.Value)
	}
	d = d.Because(fmt.Sprintf("spamd: score %.1f (tag %.1f, tag2 %.1f, kill %.1f)", score, s.o.Tag, s.o.Tag2, s.o.Kill))
	switch {
	case score >= s.o.Kill: // kill_action quarantine
		d = d.WithAdvice(ocpsmtp.AdviceQuarantine)
	case spam && slices.Contains(s.o.Tag2Actions, "quarantine"):
		d = d.WithAdvice(ocpsmtp.AdviceQuarantine)
	}
	if spam && slices.Contains(s.o.Tag2Actions, "subject") {
		sroot, err := scanned.Root()
		if err != nil {
			return callout.Decision{}, err
		}
		if !skipSigned(tx, sroot, s.o.DKIM, "spamd subject prefix") {
			m, _, err := s.subject.tag(scanned, sroot)
			if err != nil {
				return callout.Decision{}, err
			}
			if m != scanned {
				if scanned != msg {
					scanned.Close()
				}
				scanned = m
			}
		}
	}
	return result(d), nil
}

// fields returns the X-Spam-* fields for a message at or above tag.
func (s *Spamd) fields(rep spamdReply, spam bool) []callout.Field {
	p := s.o.HeaderPrefix
	verdict := "No"
	if spam {
		verdict = "Yes"
	}
	status := fmt.Sprintf("%s, score=%s tag=%s tag2=%s kill=%s", verdict,
		fmtScore(rep.Score), fmtScore(s.o.Tag), fmtScore(s.o.Tag2), fmtScore(s.o.Kill))
	if syms := rep.symbols(); len(syms) > 0 && s.o.Request == "SYMBOLS" {
		// "tests=[A, B]", folded between the symbols.
		status = foldList(len(p+"Status"), append([]string{status + " tests=[" + syms[0]}, syms[1:]...), ", ") + "]"
	}
	out := []callout.Field{}
	if spam {
		out = append(out, callout.Field{Name: p + "Flag", Value: "YES"})
	}
	out = append(out,
		callout.Field{Name: p + "Score", Value: fmtScore(rep.Score)},
		callout.Field{Name: p + "Level", Value: strings.Repeat("*", int(math.Min(math.Max(rep.Score, 0), 64)))},
		callout.Field{Name: p + "Status", Value: status},
	)
	if out[len(out)-2].Value == "" {
		out = slices.Delete(out, len(out)-2, len(out)-1)
	}
	switch s.o.Request {
	case "REPORT":
		if r := foldText(string(rep.Body)); r != "" {
			out = append(out, callout.Field{Name: p + "Report", Value: capFolded(r, maxSpamdField)})
		}
	case "HEADERS":
		out = append(out, spamdOwnFields(rep.Body, p)...)
	}
	return out
}

// spamdOwnFields returns the X-Spam-* fields of spamd's rewritten header
// (HEADERS) that this service does not write itself (such as
// X-Spam-Checker-Version), renamed to prefix.
func spamdOwnFields(header []byte, prefix string) []callout.Field {
	var out []callout.Field
	fields, err := parseFieldList(header)
	if err != nil {
		return nil
	}
	for _, f := range fields {
		if !hasPrefixFold(f.Name, "X-Spam-") {
			continue
		}
		rest := f.Name[len("X-Spam-"):]
		switch strings.ToLower(rest) {
		case "status", "level", "flag", "score", "scanned":
			continue
		}
		cf := callout.Field{Name: prefix + rest, Value: capFolded(f.Value, maxSpamdField)}
		if cf.Validate() == nil {
			out = append(out, cf)
		}
	}
	return out
}

// parseFieldList splits a header section into fields, keeping folds.
func parseFieldList(b []byte) ([]callout.Field, error) {
	var out []callout.Field
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(out) == 0 {
				return nil, fmt.Errorf("continuation before the first field")
			}
			out[len(out)-1].Value += "\r\n" + line
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("malformed header line")
		}
		out = append(out, callout.Field{Name: name, Value: strings.TrimLeft(value, " ")})
	}
	return out, nil
}

func fmtScore(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// scan sends one request and reads the answer.
func (s *Spamd) scan(ctx context.Context, msg *callout.Message) (spamdReply, error) {
	var body io.Reader = msg.NewReader()
	length := msg.Size()
	var hdr strings.Builder
	hdr.WriteString(s.o.Request + " SPAMC/1.5\r\n")
	if s.o.User != "" {
		hdr.WriteString("User: " + s.o.User + "\r\n")
	}
	if s.o.Compress {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		if _, err := io.Copy(zw, body); err != nil {
			return spamdReply{}, err
		}
		if err := zw.Close(); err != nil {
			return spamdReply{}, err
		}
		body, length = &buf, int64(buf.Len())
		hdr.WriteString("Compress: zlib\r\n")
	}
	hdr.WriteString("Content-length: " + strconv.FormatInt(length, 10) + "\r\n\r\n")
	c, err := s.backend.Conn(ctx)
	if err != nil {
		return spamdReply{}, err
	}
	bw := bufio.NewWriterSize(c, 32<<10)
	bw.WriteString(hdr.String())
	_, err = io.Copy(bw, body)
	if err == nil {
		err = bw.Flush()
	}
	var rep spamdReply
	if err == nil {
		rep, err = readSpamdReply(bufio.NewReader(c), maxSpamdReply)
	}
	return rep, c.Release(false, err)
}
