package builtin

import (
	"context"
	"mime"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/mimetext"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// SubjectTag prefixes the Subject of matching mail (kind subject-tag),
// for example "[EXT]" on mail from senders outside the local domains. A
// space separates the prefix from the subject. The
// Subject field is rewritten in place; every other byte of the message is
// kept. A subject that already starts with the prefix is left alone, and
// a message without a Subject gets one holding just the prefix.
type SubjectTag struct {
	prefix  string
	encoded string // the prefix as it is written into the field
	inside  []string
	dkim    string
}

// NewSubjectTag returns the service for opts.
func NewSubjectTag(opts *mapping.SubjectTag) *SubjectTag {
	prefix := opts.Prefix
	if !strings.HasSuffix(prefix, " ") {
		prefix += " "
	}
	enc := prefix
	if !mimetext.IsASCII([]byte(enc)) {
		// The space goes inside the encoded word: white space between
		// two encoded words is not displayed (RFC 2047 §6.2).
		enc = mime.QEncoding.Encode("utf-8", enc)
	}
	return &SubjectTag{prefix: strings.TrimRight(prefix, " "), encoded: enc, inside: opts.MatchSenderOutside, dkim: opts.DKIM}
}

// Needs implements Service: RAWDATA is adapted, MAIL read.
func (s *SubjectTag) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}, Read: []ocpsmtp.Part{ocpsmtp.PartMAIL}}
}

// Matches reports whether mail from sender is tagged.
func (s *SubjectTag) Matches(sender callout.Address) bool {
	if len(s.inside) == 0 {
		return true
	}
	return !domainListed(s.inside, sender.Domain()) && !domainListed(dotted(s.inside), sender.Domain())
}

func dotted(list []string) []string {
	out := make([]string, len(list))
	for i, d := range list {
		out[i] = "." + strings.TrimPrefix(d, ".")
	}
	return out
}

// AdaptMessage implements MessageAdapter.
func (s *SubjectTag) AdaptMessage(_ context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	if !s.Matches(tx.Sender) {
		return callout.Keep(), nil
	}
	root, err := msg.Root()
	if err != nil {
		return callout.Decision{}, err
	}
	if skipSigned(tx, root, s.dkim, "subject-tag") {
		return callout.Keep().Because("signed message left unchanged"), nil
	}
	m, why, err := s.tag(msg, root)
	if err != nil || m == msg {
		return callout.Keep().Because(why), err
	}
	return callout.ReplaceMessage(m).Because(why), nil
}

// tag returns msg with the prefix put before its subject (msg itself when
// the subject already starts with it) and what was done.
func (s *SubjectTag) tag(msg *callout.Message, root *callout.Section) (*callout.Message, string, error) {
	f, ok := root.Field("Subject")
	if !ok {
		m, err := setField(msg, root, "Subject", []byte("Subject: "+strings.TrimSpace(s.encoded)+"\r\n"))
		return m, "subject added", err
	}
	if cur, err := mimetext.DecodeHeader(f.Value()); err == nil && strings.HasPrefix(cur, s.prefix) {
		return msg, "already tagged", nil
	}
	// Insert the prefix where the field body starts: after the colon and
	// the folding white space that follows it.
	colon := strings.IndexByte(string(f.Raw), ':')
	at := colon + 1
	for at < len(f.Raw) {
		if c := f.Raw[at]; c == ' ' || c == '\t' {
			at++
		} else if c == '\r' && at+2 < len(f.Raw) && f.Raw[at+1] == '\n' && (f.Raw[at+2] == ' ' || f.Raw[at+2] == '\t') {
			at += 2 // a fold: go on to the text on the next line
		} else {
			break
		}
	}
	add := s.encoded
	if at == colon+1 {
		add = " " + add
	}
	if strings.TrimSpace(string(f.Raw[at:])) == "" {
		add = strings.TrimRight(add, " ")
	}
	ins := f.Offset + int64(at)
	m, err := msg.Splice(callout.Edit{Offset: ins, End: ins, Data: []byte(add)})
	return m, "subject tagged", err
}
