package builtin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// AuthVerify authenticates the message as it arrived (kind auth-verify):
// DKIM signatures (RFC 6376, github.com/emersion/go-msgauth/dkim), SPF for
// the client IP and the envelope sender (RFC 7208, blitiri.com.ar/go/spf)
// and DMARC from the aligned results (RFC 7489, go-msgauth/dmarc for the
// record, the organizational domain from the public suffix list). It
// writes one Authentication-Results field (RFC 8601) with the configured
// authserv-id at the top of the header, removes every incoming
// Authentication-Results that claims that authserv-id (RFC 8601 §5), and
// leaves its findings on the Tx (Tx.Auth) for the services after it. It
// must run before any service that changes the message (the mapping
// checks the chains). ARC is not checked: no maintained Go library
// implements ARC validation (go-msgauth parses arc= results only).
type AuthVerify struct {
	o        *mapping.AuthVerify
	resolver *net.Resolver
}

// NewAuthVerify returns the service for o. With o.Resolver set every
// lookup goes to that DNS server.
func NewAuthVerify(o *mapping.AuthVerify) *AuthVerify {
	r := net.DefaultResolver
	if o.Resolver != "" {
		addr := o.Resolver
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	}
	return &AuthVerify{o: o, resolver: r}
}

// Needs implements Service: RAWDATA is adapted (forged results removed,
// the new field added, a DMARC rejection); IP, HELO and MAIL are read for
// SPF.
func (a *AuthVerify) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA},
		Read: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL}}
}

// AdaptMessage implements MessageAdapter.
func (a *AuthVerify) AdaptMessage(ctx context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	root, err := msg.Root()
	if err != nil {
		return callout.Decision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.o.Timeout)
	defer cancel()
	res := &callout.AuthResults{AuthservID: a.o.AuthservID}
	var results []authres.Result
	if a.o.DKIM {
		res.DKIM = a.verifyDKIM(ctx, msg, root)
		if len(res.DKIM) == 0 {
			results = append(results, &authres.GenericResult{Method: "dkim", Value: "none"})
		}
		for _, r := range res.DKIM {
			results = append(results, &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(r.Result),
				Params: map[string]string{"reason": r.Reason, "header.d": r.Domain, "header.s": r.Selector}})
		}
	}
	if a.o.SPF {
		var p map[string]string
		res.SPF, res.SPFDomain, p = a.checkSPF(ctx, tx)
		results = append(results, &authres.GenericResult{Method: "spf", Value: authres.ResultValue(res.SPF), Params: p})
	}
	if a.o.DMARC {
		a.checkDMARC(ctx, root, res)
		p := map[string]string{"header.from": res.FromDomain}
		if res.DMARCPolicy != "" {
			p["policy.dmarc"] = res.DMARCPolicy
		}
		results = append(results, &authres.GenericResult{Method: "dmarc", Value: authres.ResultValue(res.DMARC), Params: p})
	}
	tx.Auth = res
	tx.Log().Info("auth-verify", "dkim", dkimSummary(res.DKIM), "spf", res.SPF, "dmarc", res.DMARC, "from", res.FromDomain)

	if a.o.DMARCReject == "reject" && res.DMARC == "fail" && res.DMARCPolicy == "reject" {
		return callout.RefuseWith(a.o.Reply).
			Because("DMARC p=reject failed for " + res.FromDomain), nil
	}
	d := callout.Decision{Headers: []callout.Field{{Name: "Authentication-Results", Value: formatAuthResults(a.o.AuthservID, results), Top: true}}}
	edits := removeFields(root, func(f callout.HeaderField) bool {
		return strings.EqualFold(f.Name, "Authentication-Results") && strings.EqualFold(authservID(f.Value()), a.o.AuthservID)
	})
	if len(edits) > 0 {
		m, err := msg.Splice(edits...)
		if err != nil {
			return callout.Decision{}, err
		}
		tx.Log().Info("auth-verify: incoming Authentication-Results with our authserv-id removed", "fields", len(edits))
		d.Action, d.Message = callout.ActionReplace, m
	}
	return d.Because(fmt.Sprintf("dkim=%s spf=%s dmarc=%s", dkimSummary(res.DKIM), res.SPF, res.DMARC)), nil
}

// formatAuthResults writes the field's value, one result per line.
func formatAuthResults(id string, results []authres.Result) string {
	if len(results) == 0 {
		return id + "; none"
	}
	parts := []string{id}
	for _, r := range results {
		if g, ok := r.(*authres.GenericResult); ok {
			for k, v := range g.Params {
				g.Params[k] = arParam(v)
			}
		}
		s := authres.Format("x", []authres.Result{r})
		parts = append(parts, strings.TrimSpace(strings.TrimPrefix(s, "x; ")))
	}
	return strings.Join(parts, ";\r\n\t")
}

// arParam makes a parameter value safe for authres.Format, which quotes
// a value but escapes only '"': a backslash, a quote, and control and
// 8-bit bytes become '?' (which makes authres quote the value). The
// values come from the message (a signature's d= and s=) and from DNS
// (errors naming records).
func arParam(v string) string {
	b := []byte(v)
	for i, c := range b {
		if c == '\\' || c == '"' || c < ' ' || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

// authservID returns the authserv-id of an Authentication-Results value:
// the first token or quoted-string, after any comments (which may hold
// ";" and nest, RFC 8601 §2.2 and RFC 5322 §3.2.2) and before the version
// and the first ";" outside comments and quotes.
func authservID(v string) string {
	var b strings.Builder
	depth, quoted, escaped := 0, false, false
	for _, c := range v {
		switch {
		case escaped:
			escaped = false
			if depth == 0 {
				b.WriteRune(c)
			}
			continue
		case c == '\\' && (depth > 0 || quoted):
			escaped = true
			continue
		case quoted:
			if c == '"' {
				quoted = false
			} else {
				b.WriteRune(c)
			}
			continue
		case c == '(':
			// A comment separates like white space.
			b.WriteByte(' ')
			depth++
			continue
		case c == ')' && depth > 0:
			depth--
			continue
		case depth > 0:
			continue
		case c == '"':
			quoted = true
			continue
		case c == ';':
			return firstField(b.String())
		}
		b.WriteRune(c)
	}
	return firstField(b.String())
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func dkimSummary(rs []callout.DKIMResult) string {
	if len(rs) == 0 {
		return "none"
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Result+"("+r.Domain+")")
	}
	return strings.Join(out, ",")
}

func (a *AuthVerify) lookupTXT(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) { return a.resolver.LookupTXT(ctx, name) }
}

// verifyDKIM checks every signature (up to max_signatures).
func (a *AuthVerify) verifyDKIM(ctx context.Context, msg *callout.Message, root *callout.Section) []callout.DKIMResult {
	var sels []string
	for _, f := range root.Fields {
		if strings.EqualFold(f.Name, "DKIM-Signature") {
			sels = append(sels, dkimTag(f.Value(), "s"))
		}
	}
	if len(sels) == 0 {
		return nil
	}
	verifs, err := dkim.VerifyWithOptions(msg.NewReader(), &dkim.VerifyOptions{
		LookupTXT: a.lookupTXT(ctx), MaxVerifications: a.o.MaxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return []callout.DKIMResult{{Result: "permerror", Reason: err.Error()}}
	}
	var out []callout.DKIMResult
	for i, v := range verifs {
		r := callout.DKIMResult{Result: "pass", Domain: v.Domain}
		if i < len(sels) {
			r.Selector = sels[i]
		}
		switch {
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			r.Result, r.Reason = "temperror", v.Err.Error()
		case dkim.IsPermFail(v.Err):
			r.Result, r.Reason = "permerror", v.Err.Error()
		default:
			r.Result, r.Reason = "fail", v.Err.Error()
		}
		out = append(out, r)
	}
	return out
}

// dkimTag returns the value of tag in a DKIM-Signature value.
func dkimTag(v, tag string) string {
	for _, kv := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == tag {
			return strings.Join(strings.Fields(val), "")
		}
	}
	return ""
}

// checkSPF evaluates SPF for the client IP and MAIL FROM (the HELO name
// for the null sender).
func (a *AuthVerify) checkSPF(ctx context.Context, tx *callout.Tx) (result, domain string, params map[string]string) {
	ip := net.ParseIP(strings.Trim(tx.Client.IP, "[]"))
	sender := tx.Sender.Addr
	domain = tx.Sender.Domain()
	params = map[string]string{}
	if sender == "" {
		domain = tx.Client.Helo
		params["smtp.helo"] = tx.Client.Helo
		sender = "postmaster@" + tx.Client.Helo
	} else {
		params["smtp.mailfrom"] = sender
	}
	if ip == nil {
		params["reason"] = "no client IP"
		return "none", domain, params
	}
	r, err := spf.CheckHostWithSender(ip, tx.Client.Helo, sender, spf.WithResolver(a.resolver), spf.WithContext(ctx))
	if err != nil && r != spf.Pass {
		params["reason"] = err.Error()
	}
	return string(r), domain, params
}

// checkDMARC evaluates DMARC for the RFC5322.From domain.
//
// A message naming several author domains (more than one From field, or
// more than one address) is checked for each domain and the worst result
// counts (RFC 7489 §6.6.1), so that an added From cannot turn a failure
// into permerror.
func (a *AuthVerify) checkDMARC(ctx context.Context, root *callout.Section, res *callout.AuthResults) {
	var doms []string
	for _, f := range root.Fields {
		if !strings.EqualFold(f.Name, "From") {
			continue
		}
		ds, err := addressDomains(f.Value())
		if err != nil || len(ds) == 0 {
			res.DMARC = "permerror"
			return
		}
		for _, d := range ds {
			if !slices.Contains(doms, d) {
				doms = append(doms, d)
			}
		}
	}
	if len(doms) == 0 {
		res.DMARC = "permerror"
		return
	}
	for i, dom := range doms {
		result, policy := a.dmarcFor(ctx, dom, res)
		if i == 0 || dmarcWorse(result, policy, res.DMARC, res.DMARCPolicy) {
			res.DMARC, res.DMARCPolicy, res.FromDomain = result, policy, dom
		}
	}
}

// dmarcWorse reports whether result (with policy) is worse than cur
// (with curPolicy): results from pass to fail, then policies from none
// to reject.
func dmarcWorse(result, policy, cur, curPolicy string) bool {
	rank := func(v string, order ...string) int { return slices.Index(order, v) }
	r, c := rank(result, "pass", "none", "permerror", "temperror", "fail"), rank(cur, "pass", "none", "permerror", "temperror", "fail")
	if r != c {
		return r > c
	}
	return rank(policy, "", "none", "quarantine", "reject") > rank(curPolicy, "", "none", "quarantine", "reject")
}

// dmarcFor evaluates DMARC for the author domain dom from the DKIM and
// SPF results in res: the result and the policy that applies.
func (a *AuthVerify) dmarcFor(ctx context.Context, dom string, res *callout.AuthResults) (result, policy string) {
	org := orgDomain(dom)
	opts := &dmarc.LookupOptions{LookupTXT: a.lookupTXT(ctx)}
	rec, err := dmarc.LookupWithOptions(dom, opts)
	sub := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != dom {
		rec, err = dmarc.LookupWithOptions(org, opts)
		sub = true
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		return "none", ""
	case err != nil && dmarc.IsTempFail(err):
		return "temperror", ""
	case err != nil:
		return "permerror", ""
	}
	policy = string(rec.Policy)
	if sub && rec.SubdomainPolicy != "" {
		policy = string(rec.SubdomainPolicy)
	}
	aligned := func(d string, mode dmarc.AlignmentMode) bool {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if mode == dmarc.AlignmentStrict {
			return d == dom
		}
		return d != "" && orgDomain(d) == org
	}
	// Without an aligned pass, an aligned identifier whose check failed
	// for the moment makes the result temperror, not fail: a DNS hiccup
	// must not look like a forgery (dmarc_reject refuses only fail).
	pass, temp := false, false
	for _, r := range res.DKIM {
		if aligned(r.Domain, rec.DKIMAlignment) {
			pass = pass || r.Result == "pass"
			temp = temp || r.Result == "temperror"
		}
	}
	if aligned(res.SPFDomain, rec.SPFAlignment) {
		pass = pass || res.SPF == "pass"
		temp = temp || res.SPF == "temperror"
	}
	switch {
	case pass:
		return "pass", policy
	case temp:
		return "temperror", policy
	}
	return "fail", policy
}

// orgDomain returns the organizational domain (RFC 7489 §3.2): the public
// suffix plus one label.
func orgDomain(d string) string {
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}
