package mapping

import (
	"log/slog"
	"net"
	"os"
	"time"
)

func (b *builder) milter(m *rawMilter) {
	c := &b.cfg.Milter
	*c = Milter{
		MaxSessions:     m.MaxSessions,
		MaxTransactions: m.MaxTransactions,
		LogLevel:        slog.Level(m.LogLevel),
		LogFormat:       string(m.LogFormat),
		MetricsListen:   m.MetricsListen,
		Pprof:           m.Pprof,
		MaxProcs:        m.MaxProcs,
		SpoolDir:        m.SpoolDir,
		SpoolMemory:     int64(m.SpoolMemory),
		MaxMessageSize:  int64(m.MaxMessageSize),
		Oversize:        Action(m.Oversize),
	}
	c.QuarantineHeader = m.QuarantineHdr
	if m.QuarantineHdr != "" {
		if err := checkHeaderName(m.QuarantineHdr); err != nil {
			b.errorf(ErrValue, "milter.quarantine_header", "%v", err)
		}
	}
	if len(m.Listen) == 0 {
		b.errorf(ErrMissing, "milter.listen", "needs at least one socket, like %q", DefaultListen)
	}
	seen := make(map[string]int)
	for i, s := range m.Listen {
		key := indexPath("milter.listen", i)
		sock, err := ParseSocket(s)
		if err != nil {
			b.errorf(ErrValue, key, "%q: %v", s, err)
			continue
		}
		if j, dup := seen[sock.String()]; dup {
			b.errorf(ErrConflict, key, "%q is also milter.listen[%d]", s, j)
			continue
		}
		seen[sock.String()] = i
		if sock.Network == "unix" {
			sock.Mode = os.FileMode(m.SocketMode)
			sock.Owner = m.SocketOwner
		}
		c.Listen = append(c.Listen, sock)
	}
	if m.SocketOwner != "" {
		if err := checkOwner(m.SocketOwner); err != nil {
			b.errorf(ErrValue, "milter.socket_owner", "%v", err)
		}
	}
	for i, d := range m.NonSMTPDaemons {
		if d == "" {
			b.errorf(ErrValue, indexPath("milter.non_smtp_daemon_names", i), "empty daemon name")
			continue
		}
		c.NonSMTPDaemons = append(c.NonSMTPDaemons, d)
	}
	b.atLeast("milter.max_sessions", m.MaxSessions, 1)
	b.atLeast("milter.max_transactions", m.MaxTransactions, 1)
	b.atLeast("milter.max_procs", m.MaxProcs, 0)
	if m.MetricsListen != "" {
		if _, err := parseHostPort(m.MetricsListen); err != nil {
			b.errorf(ErrValue, "milter.metrics_listen", "%q: %v", m.MetricsListen, err)
		}
	} else if m.Pprof {
		b.errorf(ErrConflict, "milter.pprof", "needs milter.metrics_listen, where the profiles are served")
	}
	if m.MaxMessageSize == 0 {
		b.errorf(ErrValue, "milter.max_message_size", "must be larger than 0")
	}
	b.answerLimits(m)
	b.atLeast("milter.max_connections", m.MaxConnections, 1)
	if m.MaxConnections > 0 && m.MaxConnections < m.MaxSessions {
		b.errorf(ErrConflict, "milter.max_connections", "%d is below max_sessions (%d): sessions over the limit could not be refused with 451", m.MaxConnections, m.MaxSessions)
	}
	c.MaxConnections = m.MaxConnections
	if m.Resolver != "" {
		if hp, err := parseHostPort(m.Resolver); err != nil {
			b.errorf(ErrValue, "milter.resolver", "%q: %v", m.Resolver, err)
		} else if host, _, _ := net.SplitHostPort(hp); net.ParseIP(host) == nil {
			b.errorf(ErrValue, "milter.resolver", "%q: want an IP address and port (a name would need a resolver itself)", m.Resolver)
		} else {
			c.Resolver = hp
		}
	}
	c.TransactionIdleTimeout = b.positive("milter.transaction_idle_timeout", m.TransactionIdleTimeout)
	b.timeouts(&m.Timeouts, &m.MTA)
}

// timeouts checks the stage deadlines against the MTA's milter timeouts:
// an answer later than those makes the MTA apply its own default action.
func (b *builder) timeouts(t *rawTimeouts, mta *rawMTA) {
	const (
		cmdKey     = "milter.mta.command_timeout"
		contentKey = "milter.mta.content_timeout"
		cmdWhy     = "the MTA gives up waiting for a pre-DATA reply then (Sendmail T=R defaults to 10s, Postfix milter_command_timeout to 30s)"
		progWhy    = "Sendmail waits for each end-of-message packet no longer than T=R, so progress must come more often"
		eomWhy     = "the MTA stops waiting for the end-of-message reply then (Postfix milter_content_timeout and Sendmail T=E default to 300s)"
	)
	b.cfg.Milter.MTA = MTALimits{
		Command: b.positive(cmdKey, mta.CommandTimeout),
		Content: b.positive(contentKey, mta.ContentTimeout),
	}
	stages := []struct {
		key string
		d   duration
		out *time.Duration
	}{
		{"milter.timeouts.connect", t.Connect, &b.cfg.Milter.Timeouts.Connect},
		{"milter.timeouts.mail", t.Mail, &b.cfg.Milter.Timeouts.Mail},
		{"milter.timeouts.rcpt", t.Rcpt, &b.cfg.Milter.Timeouts.Rcpt},
	}
	// Keys that bound nothing went away; a file that still sets them is
	// told why rather than that they are unknown.
	for key, why := range map[string]string{
		"milter.timeouts.helo": "nothing waits at HELO (it is informative to the callout server and the MTA is answered at once); delete the key",
		"milter.timeouts.data": "message data is queued and sent with the end of message, within milter.timeouts.end_of_message; delete the key",
	} {
		if _, ok := b.errs.pos[key]; ok {
			b.errorf(ErrUnknownKey, key, "removed: %s", why)
		}
	}
	for _, s := range stages {
		*s.out = b.positive(s.key, s.d)
		b.below(s.key, s.d, cmdKey, mta.CommandTimeout, cmdWhy)
	}
	b.cfg.Milter.Timeouts.EndOfMessage = b.positive("milter.timeouts.end_of_message", t.EndOfMessage)
	b.below("milter.timeouts.end_of_message", t.EndOfMessage, contentKey, mta.ContentTimeout, eomWhy)
	b.cfg.Milter.Timeouts.ProgressInterval = b.positive("milter.timeouts.progress_interval", t.ProgressInterval)
	b.below("milter.timeouts.progress_interval", t.ProgressInterval, cmdKey, mta.CommandTimeout, progWhy)
}

func (b *builder) trace(t *rawTrace) {
	b.cfg.Trace = Trace{SystemURI: t.SystemURI, PrivacyURI: t.PrivacyURI, Via: t.Via}
	if t.SystemURI == "" {
		b.errorf(ErrMissing, "trace.system_uri", `required: the URI opes-milter adds to OPES-System trace headers (RFC 3897), like "http://opes.example.net/opes-milter"`)
	} else {
		b.uri("trace.system_uri", t.SystemURI)
	}
	if t.PrivacyURI != "" {
		b.uri("trace.privacy_uri", t.PrivacyURI)
	}
}

func (b *builder) bypass(r *rawBypass) {
	by := Bypass{Header: r.Header}
	for i, a := range r.Allowed {
		if a == "*" {
			by.Any = true
		} else if err := checkURI(a); err != nil {
			b.errorf(ErrValue, indexPath("bypass.allowed", i), `%v; or "*" for any service`, err)
			continue
		}
		by.Allowed = append(by.Allowed, a)
	}
	b.cfg.Bypass = by
}

// answerLimits compiles what a callout server may ask of the MTA per
// message.
func (b *builder) answerLimits(m *rawMilter) {
	b.atLeast("milter.max_header_changes", m.MaxHeaderChanges, 1)
	b.atLeast("milter.max_added_recipients", m.MaxAddedRecipients, 1)
	if m.MaxHeaderChangeBytes <= 0 {
		b.errorf(ErrValue, "milter.max_header_change_bytes", "must be larger than 0")
	}
	adapted := int64(m.MaxAdaptedSize)
	if m.MaxAdaptedSize == -1 {
		adapted = int64(m.MaxMessageSize)
	} else if m.MaxAdaptedSize <= 0 {
		b.errorf(ErrValue, "milter.max_adapted_size", "must be larger than 0")
	}
	b.cfg.Milter.AnswerLimits = AnswerLimits{
		HeaderChanges:     m.MaxHeaderChanges,
		HeaderChangeBytes: int64(m.MaxHeaderChangeBytes),
		AddedRecipients:   m.MaxAddedRecipients,
		AdaptedSize:       adapted,
	}
}
