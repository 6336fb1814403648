package callout

import (
	"errors"
	"fmt"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Action is what a decision does with the part it answers.
type Action int

// The actions a service can take.
const (
	// ActionKeep leaves the part unchanged.
	ActionKeep Action = iota
	// ActionReplace replaces the part: Decision.Address for MAIL and RCPT,
	// Decision.Message for the message.
	ActionReplace
	// ActionRefuse asks the processor to answer the SMTP command with
	// Decision.Reply; the chain stops there.
	ActionRefuse
)

// String returns "keep", "replace" or "refuse".
func (a Action) String() string {
	switch a {
	case ActionKeep:
		return "keep"
	case ActionReplace:
		return "replace"
	case ActionRefuse:
		return "refuse"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is a service's answer for one part. The zero value keeps the
// part unchanged. The layer encodes it per the profile: a kept part becomes
// DUY (or an echo), a replaced one a DUM with the new payload, a refusal a
// DUM with SMTP-Error, added headers Add-Header parameters.
type Decision struct {
	Action Action
	// Address is the new MAIL or RCPT argument (ActionReplace).
	Address Address
	// Message is the new message (ActionReplace on the message). The chain
	// owns it from then on and closes it.
	Message *Message
	// Reply is the SMTP reply for ActionRefuse.
	Reply Reply
	// Headers are header fields to add to the message, for any action but
	// ActionRefuse, on any part: the first rides on the answer, the others
	// on annotation DUMs (docs/profile.md, section 8).
	Headers []Field
	// Advice is a hint for the processor (ocpsmtp.AdviceQuarantine,
	// AdviceDiscard, AdviceAccept; docs/profile.md, section 9), sent as the
	// profile's Advice parameter.
	Advice ocpsmtp.Advice
	// Reason says why, for logs; it is never sent.
	Reason string
}

// Keep returns a decision that leaves the part unchanged.
func Keep() Decision { return Decision{} }

// ReplaceAddress returns a decision that replaces a MAIL or RCPT argument.
func ReplaceAddress(a Address) Decision {
	return Decision{Action: ActionReplace, Address: a}
}

// ReplaceMessage returns a decision that replaces the message with m.
func ReplaceMessage(m *Message) Decision {
	return Decision{Action: ActionReplace, Message: m}
}

// Refuse returns a decision that answers the SMTP command with the reply
// code and text, for example Refuse(550, "5.1.1 no such user"); the lines
// of a multi-line text are separated by "\r\n".
func Refuse(code int, text string) Decision {
	return Decision{Action: ActionRefuse, Reply: Reply{Code: code, Text: text}}
}

// RefuseWith returns a decision that answers with r.
func RefuseWith(r Reply) Decision { return Decision{Action: ActionRefuse, Reply: r} }

// WithHeader returns d with one more header field to add.
func (d Decision) WithHeader(name, value string) Decision {
	d.Headers = append(d.Headers[:len(d.Headers):len(d.Headers)], Field{Name: name, Value: value})
	return d
}

// WithHeaderField returns d with one more header field to add.
func (d Decision) WithHeaderField(f Field) Decision {
	d.Headers = append(d.Headers[:len(d.Headers):len(d.Headers)], f)
	return d
}

// WithAdvice returns d with Advice set.
func (d Decision) WithAdvice(a ocpsmtp.Advice) Decision {
	d.Advice = a
	return d
}

// Because returns d with Reason set.
func (d Decision) Because(reason string) Decision {
	d.Reason = reason
	return d
}

// ErrBadField reports a header field a decision cannot add: an empty or
// invalid name, or a line break that is not folding.
var ErrBadField = errors.New("callout: bad header field")

// Field is one header field to add. Value is the text after the colon and
// the space; it may be folded ("\r\n" followed by a space or tab).
type Field struct {
	Name  string
	Value string
	// Top asks the processor to insert the field at the top of the header
	// (a trace field such as Authentication-Results, RFC 8601 §5) instead
	// of appending it (docs/profile.md, section 8).
	Top bool
}

// String returns the header line without its final CRLF, as the
// Add-Header parameter carries it: "Name: Value".
func (f Field) String() string { return f.Name + ": " + f.Value }

// Validate reports whether the processor will accept f as an Add-Header
// value: ocpsmtp.ParseHeaderField's rules, and not an OPES trace or bypass
// field, which belong to the processor.
func (f Field) Validate() error {
	if _, _, err := ocpsmtp.ParseHeaderField(f.String()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadField, err)
	}
	if ocpsmtp.IsOPESHeader(f.Name) {
		return fmt.Errorf("%w: %s belongs to the processor", ErrBadField, f.Name)
	}
	return nil
}
