package builtin

import (
	"context"
	"mime"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/mimetext"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// HeaderTag adds header fields built from templates (kind header-tag).
// A template may use these placeholders:
//
//	{service}    the service URI          {time}       RFC 5322 date
//	{client_ip}  the SMTP client address  {helo}       HELO/EHLO argument
//	{auth_user}  SASL login name          {sender}     envelope sender
//	{queue_id}   the MTA's queue id       {tx}         the transaction id
//
// A placeholder whose value is unknown expands to "unknown"; other text in
// braces is kept. Non-ASCII results are encoded as RFC 2047 words.
type HeaderTag struct {
	headers []mapping.Header
	now     func() time.Time
}

// NewHeaderTag returns the service for opts. now is the clock; nil means
// time.Now.
func NewHeaderTag(opts *mapping.HeaderTag, now func() time.Time) (*HeaderTag, error) {
	if now == nil {
		now = time.Now
	}
	for _, h := range opts.Headers {
		if err := (callout.Field{Name: h.Name, Value: h.Value}).Validate(); err != nil {
			return nil, err
		}
	}
	return &HeaderTag{headers: opts.Headers, now: now}, nil
}

// Needs implements Service: RAWDATA is adapted (headers are added to it);
// the connection facts and the sender are read.
func (h *HeaderTag) Needs() callout.Needs {
	return callout.Needs{
		Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA},
		Read:  []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL},
	}
}

// AdaptMessage implements MessageAdapter: the message is kept and the
// configured fields are added.
func (h *HeaderTag) AdaptMessage(_ context.Context, tx *callout.Tx, _ *callout.Message) (callout.Decision, error) {
	d := callout.Keep()
	for _, f := range h.headers {
		v := expand(f.Value, func(name string) (string, bool) { return h.value(tx, name) })
		if !mimetext.IsASCII([]byte(v)) {
			v = mime.QEncoding.Encode("utf-8", v)
		}
		d = d.WithHeader(f.Name, v)
	}
	return d, nil
}

func (h *HeaderTag) value(tx *callout.Tx, name string) (string, bool) {
	var v string
	switch name {
	case "service":
		v = tx.Service
	case "time":
		v = h.now().Format(time.RFC1123Z)
	case "client_ip":
		v = tx.Client.IP
	case "helo":
		v = tx.Client.Helo
	case "auth_user":
		v = tx.AuthUser()
	case "sender":
		v = tx.Sender.Addr
	case "queue_id":
		v = tx.Opt(ocpsmtp.OptQueueID)
	case "tx":
		v = tx.ID
	default:
		return "", false
	}
	if v == "" {
		v = "unknown"
	}
	return sanitizeHeaderValue(v), true
}

// expand replaces "{name}" in s by lookup(name) when lookup knows it.
func expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		if v, ok := lookup(s[i+1 : i+j]); ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
}

// sanitizeHeaderValue drops control characters, so that values from the
// SMTP conversation cannot inject header lines.
func sanitizeHeaderValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
