package callout

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Link is one service of a chain with the URI the processor named it by.
type Link struct {
	URI     string
	Service Service
}

// name is the configured name of the link's service for logs (see
// Server.SetServiceNames), or its URI.
func (c *Chain) name(l Link) string {
	if c.names != nil {
		return c.names(l.URI)
	}
	return l.URI
}

// Chain applies the services of one service group in SGC order, each on
// the previous one's output: a replaced address or message is what the
// next service sees, a refusal stops the chain, added headers accumulate
// (later services do not see them in the message: the processor adds
// them at end of message).
// A Chain is itself a Service. It is safe for concurrent use when its
// services are.
type Chain struct {
	Links []Link
	// Observer, when not nil, is told about every service call.
	Observer Observer

	names func(uri string) string // configured names for logs; nil: URIs
}

// Needs returns what the chain needs: the links' needs merged with
// ocpsmtp.Merge. A part is adapted when one service adapts it and read
// when services only read it; data parts stay what the services asked for
// (a header-only chain needs no body) unless two of them exclude each
// other, then they widen to RAWDATA.
func (c *Chain) Needs() Needs {
	ps := make([]ocpsmtp.Profile, 0, len(c.Links))
	all := false
	for _, l := range c.Links {
		n := l.Service.Needs()
		hl := n.HeaderList
		if len(hl) == 0 && (slices.Contains(n.Adapt, ocpsmtp.PartSINGLEHEADERS) || slices.Contains(n.Read, ocpsmtp.PartSINGLEHEADERS)) {
			all = true
		}
		ps = append(ps, ocpsmtp.Profile{Adaptive: n.Adapt, Informative: n.Read, HeaderList: hl})
	}
	m := ocpsmtp.Merge(ps...)
	if a, i := m.Has(ocpsmtp.PartSINGLEHEADERS); (a || i) && (all || len(m.HeaderList) == 0) {
		m.HeaderList = []string{ocpsmtp.AllHeaders}
	}
	return Needs{Adapt: m.Adaptive, Read: m.Informative, HeaderList: m.HeaderList}
}

// AdaptMail runs the MailAdapter services on the sender.
func (c *Chain) AdaptMail(ctx context.Context, tx *Tx, from Address) (Decision, error) {
	return c.adaptAddress(ctx, tx, ocpsmtp.PartMAIL, from, func(s Service, a Address) (Decision, error) {
		if m, ok := s.(MailAdapter); ok {
			return m.AdaptMail(ctx, tx, a)
		}
		return Keep(), errSkip
	})
}

// AdaptRcpt runs the RcptAdapter services on one recipient.
func (c *Chain) AdaptRcpt(ctx context.Context, tx *Tx, rcpt Address) (Decision, error) {
	return c.adaptAddress(ctx, tx, ocpsmtp.PartRCPT, rcpt, func(s Service, a Address) (Decision, error) {
		if r, ok := s.(RcptAdapter); ok {
			return r.AdaptRcpt(ctx, tx, a)
		}
		return Keep(), errSkip
	})
}

// errSkip marks a service that does not handle the part.
var errSkip = fmt.Errorf("callout: service skips the part")

func (c *Chain) adaptAddress(ctx context.Context, tx *Tx, part ocpsmtp.Part, a Address,
	call func(Service, Address) (Decision, error)) (Decision, error) {
	cur, changed := a, false
	var advice ocpsmtp.Advice
	var headers []Field
	for _, l := range c.Links {
		d, err := c.call(ctx, tx, l, part, func() (Decision, error) { return call(l.Service, cur) })
		if err == errSkip {
			continue
		}
		if err != nil {
			return Decision{}, err
		}
		if d.Advice != "" {
			advice = d.Advice
		}
		switch d.Action {
		case ActionRefuse:
			d.Headers = nil
			if d.Advice == "" {
				d.Advice = advice
			}
			return d, nil
		case ActionReplace:
			cur, changed = d.Address, true
		}
		headers = append(headers, d.Headers...)
	}
	d := Keep()
	if changed {
		d = ReplaceAddress(cur)
	}
	d.Advice, d.Headers = advice, headers
	return d, nil
}

// AdaptMessage runs the MessageAdapter services on the message. The
// result replaces the message when any service did; the returned message
// then belongs to the caller. msg itself is never closed.
func (c *Chain) AdaptMessage(ctx context.Context, tx *Tx, msg *Message) (Decision, error) {
	return c.adaptMessage(ctx, tx, msg, ocpsmtp.PartRAWDATA)
}

// adaptMessage is AdaptMessage for a message built from part (the
// observer's label).
func (c *Chain) adaptMessage(ctx context.Context, tx *Tx, msg *Message, part ocpsmtp.Part) (Decision, error) {
	cur := msg
	release := func() {
		if cur != msg {
			cur.Close()
		}
	}
	var out Decision
	for _, l := range c.Links {
		ma, ok := l.Service.(MessageAdapter)
		if !ok {
			continue
		}
		in := cur
		d, err := c.call(ctx, tx, l, part, func() (Decision, error) { return ma.AdaptMessage(ctx, tx, in) })
		if err != nil {
			release()
			return Decision{}, err
		}
		if d.Advice != "" {
			out.Advice = d.Advice
		}
		switch d.Action {
		case ActionRefuse:
			release()
			d.Headers = nil
			if d.Advice == "" {
				d.Advice = out.Advice
			}
			return d, nil
		case ActionReplace:
			if d.Message == nil {
				release()
				return Decision{}, fmt.Errorf("callout: service %s replaced the message with nil", l.URI)
			}
			if d.Message != cur {
				release()
				cur = d.Message
			}
		}
		out.Headers = append(out.Headers, d.Headers...)
	}
	if cur != msg {
		out.Action, out.Message = ActionReplace, cur
	}
	return out, nil
}

// maxLoggedReasons bounds the reasons a transaction's log line carries.
const maxLoggedReasons = 32

// call runs one service, turning a panic into an error and reporting to
// the observer; the decision's reason goes to the transaction's log line.
func (c *Chain) call(ctx context.Context, tx *Tx, l Link, part ocpsmtp.Part, fn func() (Decision, error)) (d Decision, err error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	tx.Service = l.URI
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			tx.Log().Error("service panicked", "service", c.name(l), "panic", r, "stack", string(debug.Stack()))
			d, err = Decision{}, &ServiceError{Service: l.URI, Err: fmt.Errorf("panic: %v", r)}
		}
		if err == errSkip {
			return
		}
		if err == nil {
			err = d.validate(part)
			if err != nil {
				err = &ServiceError{Service: l.URI, Err: err}
			}
		}
		if c.Observer != nil {
			c.Observer.ObserveCall(l.URI, part, d, err, time.Since(start))
		}
		if err == nil && d.Reason != "" && len(tx.reasons) < maxLoggedReasons {
			tx.reasons = append(tx.reasons, c.name(l)+": "+d.Reason)
		}
		if log := tx.Log(); log.Enabled(ctx, slog.LevelDebug) {
			attrs := []any{"service", c.name(l), "part", string(part), "action", d.Action.String()}
			if d.Reason != "" {
				attrs = append(attrs, "reason", d.Reason)
			}
			if err != nil {
				attrs = append(attrs, "err", err)
			}
			log.Debug("service called", append(attrs, "duration", time.Since(start))...)
		}
	}()
	d, err = fn()
	if err != nil && err != errSkip {
		err = &ServiceError{Service: l.URI, Err: err}
	}
	return d, err
}

// validate checks that d can be encoded as the answer for part.
func (d Decision) validate(part ocpsmtp.Part) error {
	if d.Advice != "" && !d.Advice.Valid() {
		return fmt.Errorf("callout: advice %q is not a token", d.Advice)
	}
	switch d.Action {
	case ActionRefuse:
		if err := d.Reply.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadReply, err)
		}
	case ActionReplace:
		if part == ocpsmtp.PartRAWDATA && d.Message == nil {
			return fmt.Errorf("callout: replace decision without a message")
		}
	}
	for _, f := range d.Headers {
		if err := f.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// ServiceError is a failure of one service: an error it returned, a
// panic, or a decision that cannot be encoded. The layer ends the
// transaction with a 400 result; the processor then applies its failure
// policy.
type ServiceError struct {
	Service string
	Err     error
}

func (e *ServiceError) Error() string { return "callout: service " + e.Service + ": " + e.Err.Error() }

func (e *ServiceError) Unwrap() error { return e.Err }
