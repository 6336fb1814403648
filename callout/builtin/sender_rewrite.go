package builtin

import (
	"context"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// SenderRewrite rewrites the envelope sender through a canonical map
// (kind sender-rewrite): a whole address first, then its domain, keeping
// the local part. The null sender is never rewritten.
type SenderRewrite struct {
	opts *mapping.SenderRewrite
}

// NewSenderRewrite returns the service for opts.
func NewSenderRewrite(opts *mapping.SenderRewrite) *SenderRewrite {
	return &SenderRewrite{opts: opts}
}

// Needs implements Service: MAIL is adapted.
func (s *SenderRewrite) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartMAIL}}
}

// AdaptMail implements MailAdapter.
func (s *SenderRewrite) AdaptMail(_ context.Context, _ *callout.Tx, from callout.Address) (callout.Decision, error) {
	if from.Addr == "" {
		return callout.Keep(), nil
	}
	addr := strings.ToLower(from.Addr)
	if to, ok := s.opts.Addresses[addr]; ok {
		return callout.ReplaceAddress(from.WithAddr(to)).Because("canonical address"), nil
	}
	if to, ok := s.opts.Domains[from.Domain()]; ok {
		return callout.ReplaceAddress(from.WithAddr(from.Local() + "@" + to)).Because("canonical domain"), nil
	}
	return callout.Keep(), nil
}
