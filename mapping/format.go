package mapping

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Format prints the compiled configuration readably, for "opes-milter
// check": the daemon settings, then the routes in the order they are
// tried, each with its match, profile, chain, server set, parts and
// failure policy, then the skip rules and the opes-callout side.
func (c *Config) Format(w io.Writer) error {
	p := &printer{w: w}
	p.printf("configuration %s is valid\n", c.File)
	if c.HasMilter() {
		c.formatMilter(p)
	} else {
		p.printf("\nopes-milter: not configured (no [[routes]])\n")
	}
	if c.Callout != nil {
		c.Callout.format(p)
	} else {
		p.printf("\nopes-callout: not configured (no [callout])\n")
	}
	return p.err
}

// printer writes lines and keeps the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// field prints one indented "label  value" line.
func (p *printer) field(label, format string, args ...any) {
	p.printf("  %-13s %s\n", label, fmt.Sprintf(format, args...))
}

func (c *Config) formatMilter(p *printer) {
	m := &c.Milter
	p.printf("\nopes-milter\n")
	p.field("listen", "%s", joinStringers(m.Listen))
	p.field("limits", "%d sessions, %d transactions in flight", m.MaxSessions, m.MaxTransactions)
	if len(m.NonSMTPDaemons) > 0 {
		p.field("non-SMTP", "daemon names %s (recipients deleted, never refused at RCPT)", strings.Join(m.NonSMTPDaemons, ", "))
	}
	p.field("messages", "up to %s adapted (larger: %s); spooled to %s above %s",
		FormatSize(m.MaxMessageSize), m.Oversize, orDefault(m.SpoolDir, "the temporary directory"), FormatSize(m.SpoolMemory))
	t := &m.Timeouts
	p.field("deadlines", "connect %v, mail %v, rcpt %v, end of message %v (progress every %v)",
		t.Connect, t.Mail, t.Rcpt, t.EndOfMessage, t.ProgressInterval)
	p.field("MTA limits", "%v per command, %v for the content", m.MTA.Command, m.MTA.Content)
	p.field("logs", "%s, %s", strings.ToLower(m.LogLevel.String()), m.LogFormat)
	p.field("CPUs", "%s", procsText(m.MaxProcs))
	if m.MetricsListen != "" {
		p.field("metrics", "%s%s", m.MetricsListen, pick(m.Pprof, ", with /debug/pprof/", ""))
	}
	tr := &c.Trace
	p.field("trace", "OPES-System %s; privacy policy %s; OPES-Via %s", tr.SystemURI, orDefault(tr.PrivacyURI, "none"), pick(tr.Via, "on", "off"))
	switch {
	case !c.Bypass.Header:
		p.field("bypass", "OPES-Bypass is ignored")
	case c.Bypass.Any:
		p.field("bypass", "OPES-Bypass may skip any service")
	case len(c.Bypass.Allowed) == 0:
		p.field("bypass", "OPES-Bypass is honoured, but no service may be bypassed")
	default:
		p.field("bypass", "OPES-Bypass may skip %s", strings.Join(c.Bypass.Allowed, ", "))
	}
	for _, r := range c.Routes {
		r.format(p)
		c.formatGroup(p, r)
	}
	for _, s := range c.Skips {
		p.printf("\nskip %d %q\n", s.Index+1, s.Name)
		p.field("when", "%s", s.Match.String())
	}
}

func (r *Route) format(p *printer) {
	p.printf("\nroute %d %q\n", r.Index+1, r.Name)
	p.field("when", "%s", r.Match.String())
	p.field("profile", "%s (%s)", r.Profile, r.Profile.URI())
	c := r.Chain
	p.field("chain", "%s", c.Name)
	for i, s := range c.Services {
		p.field(pick(i == 0, "services", ""), "%d. %s <%s>%s", i+1, s.Name, s.URI, formatParams(s.Params))
	}
	s := c.Server
	p.field("servers", "%s: %s %s, %d connections each, %s", s.Name, s.Strategy, strings.Join(s.Addresses, " "), s.Connections, pick(s.TLS != nil, "TLS", "plain TCP"))
	p.field("adaptive", "%s", joinParts(r.Adaptive))
	p.field("informative", "%s", joinParts(r.Informative))
	if r.HeaderList != nil {
		p.field("header list", "%s", strings.Join(r.HeaderList, ", "))
	}
	f := c.OnFailure
	p.field("on failure", "connect %s, timeout %s, protocol %s, server %s", f.Connect, f.Timeout, f.Protocol, f.Server)
}

// formatGroup explains which OCP service group route r runs in when other
// routes use its chain: opes-milter negotiates one service group per chain
// and offer (profile, parts, header list), so routes share a group only
// when they offer the same.
func (c *Config) formatGroup(p *printer, r *Route) {
	var same, other []string
	for _, o := range c.Routes {
		if o == r || o.Chain != r.Chain {
			continue
		}
		name := fmt.Sprintf("%d %q", o.Index+1, o.Name)
		if sameOffer(o, r) {
			same = append(same, name)
		} else {
			other = append(other, name)
		}
	}
	if len(same) > 0 {
		p.field("service group", "shared with route %s (same chain, same offer)", strings.Join(same, ", "))
	}
	if len(other) > 0 {
		p.field("service group", "its own, with its own parts: route %s uses chain %s with another offer (one group per chain and offer)",
			strings.Join(other, ", "), r.Chain.Name)
	}
}

// sameOffer reports whether two routes offer the same profile and parts.
func sameOffer(a, b *Route) bool {
	return a.Profile == b.Profile && slices.Equal(a.Adaptive, b.Adaptive) &&
		slices.Equal(a.Informative, b.Informative) && slices.Equal(a.HeaderList, b.HeaderList)
}

func (c *Callout) format(p *printer) {
	p.printf("\nopes-callout\n")
	tls := "plain TCP"
	if c.TLS != nil {
		tls = "TLS"
		if c.TLS.CAFile != "" {
			tls += " with client certificates"
		}
	}
	p.field("listen", "%s (%s)", strings.Join(c.Listen, " "), tls)
	p.field("limits", "%d connections; idle %v, handshake %v", c.MaxConnections, c.IdleTimeout, c.HandshakeTimeout)
	p.field("logs", "%s, %s", strings.ToLower(c.LogLevel.String()), c.LogFormat)
	p.field("CPUs", "%s", procsText(c.MaxProcs))
	if c.MetricsListen != "" {
		p.field("metrics", "%s%s", c.MetricsListen, pick(c.Pprof, ", with /debug/pprof/", ""))
	}
	for _, s := range c.Services {
		p.field("service", "%s <%s> %s", s.Name, s.URI, s.Kind)
		if d := DescribeOptions(s.Options); d != "" {
			p.field("", "%s", d)
		}
	}
}

// DescribeOptions prints the settings of a callout service that have a
// default (replies, timeouts, limits, actions), as the service applies
// them; "" for a kind without such settings. Both check commands print it.
func DescribeOptions(o Options) string {
	switch o := o.(type) {
	case *RecipientPolicy:
		return "reply " + strconv.Quote(o.Reply.String())
	case *AttachmentFilter:
		return fmt.Sprintf("action %s, signed %s, reply %q, replacement %q", o.Action, o.Signed, o.Reply.String(), o.Replacement)
	case *Command:
		return fmt.Sprintf("timeout %v, default %s, reply %q, max output %s", o.Timeout, o.Default, o.Reply.String(), FormatSize(o.MaxOutput))
	case *SizeLimit:
		return fmt.Sprintf("max %s, reply %q", FormatSize(o.Max), o.Reply.String())
	}
	return ""
}

// String describes the match: "any connection", or its conditions.
func (m Match) String() string {
	var conds []string
	if len(m.DaemonNames) > 0 {
		conds = append(conds, "daemon name "+strings.Join(m.DaemonNames, " or "))
	}
	if len(m.ClientNetworks) > 0 {
		nets := make([]string, len(m.ClientNetworks))
		for i, n := range m.ClientNetworks {
			nets[i] = n.String()
		}
		conds = append(conds, "client in "+strings.Join(nets, " or "))
	}
	if m.Authenticated != nil {
		conds = append(conds, pick(*m.Authenticated, "authenticated", "not authenticated"))
	}
	if len(m.SenderDomains) > 0 {
		conds = append(conds, "sender domain "+strings.Join(m.SenderDomains, " or "))
	}
	if len(m.RcptDomains) > 0 {
		conds = append(conds, "first recipient domain "+strings.Join(m.RcptDomains, " or "))
	}
	if m.NonSMTP != nil {
		conds = append(conds, pick(*m.NonSMTP, "submitted without SMTP", "received by SMTP"))
	}
	if len(conds) == 0 {
		return "any connection"
	}
	return strings.Join(conds, ", and ")
}

func formatParams(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	kv := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		kv = append(kv, k+"="+strconv.Quote(m[k]))
	}
	return " {" + strings.Join(kv, ", ") + "}"
}

func joinParts(list []ocpsmtp.Part) string {
	if len(list) == 0 {
		return "none"
	}
	s := make([]string, len(list))
	for i, p := range list {
		s[i] = string(p)
	}
	return strings.Join(s, " ")
}

func joinStringers[T fmt.Stringer](list []T) string {
	s := make([]string, len(list))
	for i, v := range list {
		s[i] = v.String()
	}
	return strings.Join(s, " ")
}

// procsText describes max_procs.
func procsText(n int) string {
	if n > 0 {
		return fmt.Sprintf("Go code on %d at once (max_procs)", n)
	}
	return "Go code on half of those available (max_procs = 0)"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}
