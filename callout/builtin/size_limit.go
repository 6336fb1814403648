package builtin

import (
	"context"
	"fmt"
	"strconv"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// SizeLimit refuses messages larger than a maximum (kind size-limit): at
// MAIL already when the client declares a larger SIZE= (RFC 1870), and
// after the data otherwise.
type SizeLimit struct {
	max   int64
	reply callout.Reply
}

// NewSizeLimit returns the service for opts.
func NewSizeLimit(opts *mapping.SizeLimit) (*SizeLimit, error) {
	if opts.Max <= 0 {
		return nil, fmt.Errorf("callout: size-limit: max must be positive, not %d", opts.Max)
	}
	r := opts.Reply
	if r.IsZero() {
		r = mapping.DefaultOptions(mapping.KindSizeLimit).(*mapping.SizeLimit).Reply
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &SizeLimit{max: opts.Max, reply: r}, nil
}

// Needs implements Service: MAIL (for SIZE=) and RAWDATA are adapted.
func (s *SizeLimit) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartRAWDATA}}
}

// AdaptMail implements MailAdapter: a declared size above the maximum is
// refused before any data is sent.
func (s *SizeLimit) AdaptMail(_ context.Context, _ *callout.Tx, from callout.Address) (callout.Decision, error) {
	if v, ok := from.Arg("SIZE"); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > s.max {
			return callout.RefuseWith(s.reply).Because(fmt.Sprintf("declared size %d > %d", n, s.max)), nil
		}
	}
	return callout.Keep(), nil
}

// AdaptMessage implements MessageAdapter.
func (s *SizeLimit) AdaptMessage(_ context.Context, _ *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	if msg.Size() > s.max {
		return callout.RefuseWith(s.reply).Because(fmt.Sprintf("size %d > %d", msg.Size(), s.max)), nil
	}
	return callout.Keep(), nil
}
