package builtin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/mimetext"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Attachment filter actions and signed-message policies.
const (
	AttachmentRemove  = "remove"
	AttachmentReplace = "replace"
	AttachmentReject  = "reject"
	SignedPass        = "pass"
	SignedReject      = "reject"
	// What happens to a message whose structure the filter cannot read
	// to the end (Section.Incomplete).
	UnparsableReject     = "reject"
	UnparsableQuarantine = "quarantine"
	UnparsableFail       = "fail"
)

// ErrUnparsable is returned (with unparsable = "fail") for a message whose
// MIME structure the filter cannot read to the end: the transaction fails
// and the processor's failure policy applies.
var ErrUnparsable = errors.New("attachment-filter: the message's MIME structure cannot be read to the end")

// AttachmentFilter acts on attachments by file name extension, media type
// and decoded size (kind attachment-filter): it removes them, replaces
// them with a short text part, or refuses the message. Every part it does
// not act on stays byte-identical. Parts of a signed or encrypted entity
// are never changed: the Signed policy either refuses such a message or
// passes it unchanged. Signature and encrypted-payload parts themselves
// are not matched.
type AttachmentFilter struct {
	opts       *mapping.AttachmentFilter
	reply      callout.Reply
	notice     string
	unparsable string // the Unparsable policy, defaulted
}

// NewAttachmentFilter returns the service for opts.
func NewAttachmentFilter(opts *mapping.AttachmentFilter) (*AttachmentFilter, error) {
	switch opts.Action {
	case AttachmentRemove, AttachmentReplace, AttachmentReject:
	default:
		return nil, fmt.Errorf("callout: attachment-filter: unknown action %q", opts.Action)
	}
	switch opts.Signed {
	case SignedPass, SignedReject:
	default:
		return nil, fmt.Errorf("callout: attachment-filter: unknown signed policy %q", opts.Signed)
	}
	unparsable := opts.Unparsable
	switch unparsable {
	case "":
		unparsable = UnparsableReject
	case UnparsableReject, UnparsableQuarantine, UnparsableFail:
	default:
		return nil, fmt.Errorf("callout: attachment-filter: unknown unparsable policy %q", opts.Unparsable)
	}
	// What opts leaves zero takes mapping's default. In the notice,
	// {filename}, {type} and {size} are expanded.
	def := mapping.DefaultOptions(mapping.KindAttachmentFilter).(*mapping.AttachmentFilter)
	r := opts.Reply
	if r.IsZero() {
		r = def.Reply
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	notice := opts.Replacement
	if notice == "" {
		notice = def.Replacement
	}
	return &AttachmentFilter{opts: opts, reply: r, notice: notice, unparsable: unparsable}, nil
}

// Needs implements Service: RAWDATA is adapted.
func (f *AttachmentFilter) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}

// match is one attachment the filter acts on.
type match struct {
	s    *callout.Section
	size int64
	why  string
}

// AdaptMessage implements MessageAdapter.
func (f *AttachmentFilter) AdaptMessage(_ context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	root, err := msg.Root()
	if err != nil {
		return callout.Decision{}, err
	}
	var found []match
	var incomplete *callout.Section
	err = root.Walk(func(s *callout.Section) error {
		if s.Incomplete && incomplete == nil {
			incomplete = s
		}
		if len(s.Parts) > 0 || !s.IsAttachment() || isSecurityPart(s) {
			return nil
		}
		size, err := decodedSize(s)
		if err != nil {
			return err
		}
		if why := f.matches(s, size); why != "" {
			found = append(found, match{s: s, size: size, why: why})
		}
		return nil
	})
	if err != nil {
		return callout.Decision{}, err
	}
	if incomplete != nil {
		// Fail closed: what the parser did not read could be a
		// forbidden attachment.
		return f.unparsableDecision(incomplete)
	}
	if len(found) == 0 {
		return callout.Keep(), nil
	}
	if f.opts.Action == AttachmentReject {
		return callout.RefuseWith(f.reply).Because(found[0].why), nil
	}
	var edits []callout.Edit
	var acted []string
	removed := map[*callout.Section]int{}
	for _, m := range found {
		if m.s.Protected() {
			if f.opts.Signed == SignedReject {
				return callout.RefuseWith(f.reply).Because("signed or encrypted message with " + m.why), nil
			}
			tx.Log().Info("attachment-filter: signed or encrypted part passed unchanged", "part", pathString(m.s.Path), "match", m.why)
			continue
		}
		p := m.s.Parent
		done := "attachment replaced by a notice"
		if f.opts.Action == AttachmentRemove && p != nil && p.IsMultipart() && removed[p]+1 < len(p.Parts) {
			removed[p]++
			edits = append(edits, callout.Edit{Offset: m.s.DelimOffset, End: m.s.End})
			done = "attachment removed"
		} else {
			edits = append(edits, f.replaceEdits(m)...)
		}
		// One line per attachment, so that an admin asked where an
		// attachment went finds it (the MTA's queue id is on the
		// transaction's line, ocp_tx on both).
		tx.Log().Info(done, "part", pathString(m.s.Path), "match", m.why, "size", m.size)
		acted = append(acted, m.why)
	}
	if len(edits) == 0 {
		return callout.Keep().Because("signed message passed: " + strings.Join(acted, ", ")), nil
	}
	out, err := msg.Splice(edits...)
	if err != nil {
		return callout.Decision{}, err
	}
	return callout.ReplaceMessage(out).Because(f.opts.Action + ": " + strings.Join(acted, ", ")), nil
}

// unparsableDecision is the decision for a message whose structure could not be
// read to the end at section s.
func (f *AttachmentFilter) unparsableDecision(s *callout.Section) (callout.Decision, error) {
	why := "unparsable: part " + pathString(s.Path) + ": " + strings.Join(s.Problems, "; ")
	switch f.unparsable {
	case UnparsableQuarantine:
		return callout.Keep().WithAdvice(ocpsmtp.AdviceQuarantine).Because(why), nil
	case UnparsableFail:
		return callout.Decision{}, fmt.Errorf("%w (%s)", ErrUnparsable, why)
	}
	return callout.RefuseWith(f.reply).Because(why), nil
}

// matches returns why s matches the filter, or "".
func (f *AttachmentFilter) matches(s *callout.Section, size int64) string {
	name := strings.ToLower(s.Filename())
	for _, ext := range f.opts.Extensions {
		if name != "" && strings.HasSuffix(name, strings.ToLower(ext)) {
			return fmt.Sprintf("%q (extension %s)", s.Filename(), ext)
		}
	}
	for _, ct := range f.opts.ContentTypes {
		ct = strings.ToLower(ct)
		if s.MediaType == ct || strings.HasSuffix(ct, "/*") && strings.HasPrefix(s.MediaType, ct[:len(ct)-1]) {
			return fmt.Sprintf("%q (type %s)", s.Filename(), s.MediaType)
		}
	}
	if f.opts.MaxSize > 0 && size > f.opts.MaxSize {
		return fmt.Sprintf("%q (%d bytes)", s.Filename(), size)
	}
	return ""
}

// isSecurityPart reports whether s is the signature of a multipart/signed
// or a part of a multipart/encrypted: never filtered by itself.
func isSecurityPart(s *callout.Section) bool {
	p := s.Parent
	if p == nil {
		return false
	}
	switch p.MediaType {
	case "multipart/encrypted":
		return true
	case "multipart/signed":
		return len(s.Path) > 0 && s.Path[len(s.Path)-1] > 0
	}
	return false
}

// replaceEdits returns the edits that turn the part of m into a text part
// with the notice. For the root, only its Content-* fields are replaced.
func (f *AttachmentFilter) replaceEdits(m match) []callout.Edit {
	s := m.s
	notice := expand(f.notice, func(k string) (string, bool) {
		switch k {
		case "filename":
			return sanitizeHeaderValue(s.Filename()), true
		case "type":
			return s.MediaType, true
		case "size":
			return strconv.FormatInt(m.size, 10), true
		}
		return "", false
	})
	cte := "7bit"
	if !mimetext.IsASCII([]byte(notice)) {
		cte = "8bit"
	}
	hdr := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + cte +
		"\r\nContent-Disposition: inline\r\n"
	body := toCRLF(notice)
	if s.Parent == nil {
		var edits []callout.Edit
		at := s.Offset
		for _, fl := range s.Fields {
			at = fl.End
			if strings.HasPrefix(strings.ToLower(fl.Name), "content-") {
				edits = append(edits, callout.Edit{Offset: fl.Offset, End: fl.End})
			}
		}
		edits = append(edits, callout.Edit{Offset: at, End: at, Data: []byte(hdr)})
		return append(edits, callout.Edit{Offset: s.BodyOffset, End: s.End, Data: []byte(body + "\r\n")})
	}
	return []callout.Edit{{Offset: s.Offset, End: s.End, Data: []byte(hdr + "\r\n" + body)}}
}

// decodedSize returns the size of the section's body once its transfer
// encoding is removed (the raw size when that fails).
func decodedSize(s *callout.Section) (int64, error) {
	raw := s.End - s.BodyOffset
	var r io.Reader
	switch s.TransferEncoding() {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &skipSpace{r: s.Body()})
	case "quoted-printable":
		r = quotedprintable.NewReader(s.Body())
	default:
		return raw, nil
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return raw, nil
	}
	return n, nil
}

// skipSpace drops spaces and tabs, which base64.NewDecoder does not
// ignore (it ignores CR and LF only).
type skipSpace struct{ r io.Reader }

func (s *skipSpace) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != ' ' && c != '\t' {
			p[j] = c
			j++
		}
	}
	return j, err
}
