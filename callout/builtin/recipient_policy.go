package builtin

import (
	"context"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// RecipientPolicy allows or denies recipients by address, domain and
// pattern, and rewrites aliases (kind recipient-policy). Allow lists win
// over deny lists; a denied recipient is refused with the configured
// reply, in whose text "{rcpt}" stands for the recipient in angle
// brackets. Surviving recipients found in the alias map are replaced. Domain
// entries match the domain itself and, when written with a leading dot,
// its subdomains.
type RecipientPolicy struct {
	opts  *mapping.RecipientPolicy
	reply callout.Reply
}

// NewRecipientPolicy returns the service for opts.
func NewRecipientPolicy(opts *mapping.RecipientPolicy) (*RecipientPolicy, error) {
	r := opts.Reply
	if r.IsZero() {
		r = mapping.DefaultOptions(mapping.KindRecipientPolicy).(*mapping.RecipientPolicy).Reply
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &RecipientPolicy{opts: opts, reply: r}, nil
}

// Needs implements Service: RCPT is adapted.
func (p *RecipientPolicy) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRCPT}}
}

// AdaptRcpt implements RcptAdapter.
func (p *RecipientPolicy) AdaptRcpt(_ context.Context, _ *callout.Tx, rcpt callout.Address) (callout.Decision, error) {
	addr := strings.ToLower(rcpt.Addr)
	dom := rcpt.Domain()
	allowed := containsFold(p.opts.Allow, addr) || domainListed(p.opts.AllowDomains, dom)
	if !allowed {
		denied := containsFold(p.opts.Deny, addr) || domainListed(p.opts.DenyDomains, dom)
		for _, re := range p.opts.DenyPatterns {
			if denied {
				break
			}
			denied = re.MatchString(addr)
		}
		if denied {
			r := p.reply
			r.Text = strings.ReplaceAll(r.Text, "{rcpt}", "<"+sanitizeHeaderValue(rcpt.Addr)+">")
			return callout.RefuseWith(r).Because("denied recipient " + addr), nil
		}
	}
	if to, ok := p.opts.Aliases[addr]; ok && !strings.EqualFold(to, rcpt.Addr) {
		return callout.ReplaceAddress(rcpt.WithAddr(to)).Because("alias of " + addr), nil
	}
	return callout.Keep(), nil
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}

// domainListed reports whether dom is in list: equal to an entry, or a
// subdomain of an entry that starts with ".".
func domainListed(list []string, dom string) bool {
	if dom == "" {
		return false
	}
	for _, e := range list {
		e = strings.ToLower(e)
		if strings.HasPrefix(e, ".") {
			if strings.HasSuffix(dom, e) || dom == e[1:] {
				return true
			}
		} else if dom == e {
			return true
		}
	}
	return false
}
