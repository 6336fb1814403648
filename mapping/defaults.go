package mapping

import (
	"log/slog"
	"reflect"
	"time"
)

// Every default of the configuration is here. A key absent from the file
// keeps the value set below; contrib/opes-milter.toml repeats them.

// Defaults of the opes-milter side.
const (
	DefaultListen           = "inet:127.0.0.1:8890"
	DefaultSocketMode       = 0o660
	DefaultMaxSessions      = 500
	DefaultMaxTransactions  = 1000
	DefaultSpoolMemory      = 1 << 20  // 1MiB
	DefaultMaxMessageSize   = 50 << 20 // 50MiB
	DefaultOversize         = Reject
	DefaultConnectTimeout   = 5 * time.Second
	DefaultMailTimeout      = 8 * time.Second
	DefaultRcptTimeout      = 8 * time.Second
	DefaultEOMTimeout       = 240 * time.Second
	DefaultProgressInterval = 5 * time.Second
	// DefaultMTACommandTimeout is Sendmail's T=R:10s, the stricter of the
	// two MTAs (Postfix milter_command_timeout is 30s).
	DefaultMTACommandTimeout = 10 * time.Second
	// DefaultMTAContentTimeout is Postfix's milter_content_timeout and
	// Sendmail's T=E:5m.
	DefaultMTAContentTimeout = 300 * time.Second
)

// What a callout server may ask of the MTA per message; max_adapted_size
// defaults to max_message_size (the MTA's own limit).
const (
	DefaultMaxHeaderChanges     = 1000
	DefaultMaxHeaderChangeBytes = 1 << 20 // 1MiB
	DefaultMaxAddedRecipients   = 1000
)

// What the MTA may hold: connections at once, and how long a session may
// stay idle inside a mail transaction.
const (
	DefaultMaxConnections         = 1000
	DefaultTransactionIdleTimeout = 60 * time.Second
)

// Defaults of a callout server set.
const (
	DefaultConnections      = 2
	DefaultDialTimeout      = 3 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultFailureLimit     = 5
	DefaultRevivalDelay     = time.Second // the longest wait between probes
	DefaultResolveInterval  = 30 * time.Second
)

// Defaults of the opes-callout side.
const (
	DefaultCalloutListen           = "127.0.0.1:8891"
	DefaultCalloutMaxConnections   = 100
	DefaultCalloutIdleTimeout      = 300 * time.Second
	DefaultCalloutHandshakeTimeout = 10 * time.Second
	DefaultCalloutDrainTimeout     = 30 * time.Second
	DefaultCommandTimeout          = 30 * time.Second
	DefaultCommandMaxOutput        = 64 << 20 // 64MiB
	DefaultRecipientReply          = "550 5.1.1 Recipient address rejected"
	DefaultAttachmentReply         = "554 5.7.1 Message contains a forbidden attachment"
	DefaultAttachmentReplacement   = "The attachment \"{filename}\" ({type}, {size} bytes) was removed by the mail filter."
	DefaultCommandReply            = "550 5.7.1 Message rejected by content filter"
	DefaultSizeLimitReply          = "552 5.3.4 Message size exceeds fixed maximum message size"
	// DefaultCommandTempFailReply answers a message the command service
	// could not check (the program failed, or its status maps to
	// "tempfail"); it has no key.
	DefaultCommandTempFailReply = "451 4.7.1 Message could not be checked, try again later"
)

// DefaultOptions returns the options of a callout service of kind k whose
// table sets no key but uri and kind: every default of the kind, compiled
// as the configuration compiles it (what "check" reports for such a
// table). Keys the kind requires (a command's argv, a size limit's max)
// stay zero. It returns nil for an unknown kind. The built-in services
// (package callout/builtin) take what their options leave zero from here,
// so the defaults live in this file only.
func DefaultOptions(k Kind) Options {
	raw := newRawOptions(k)
	if raw == nil {
		return nil
	}
	setDefaults(reflect.ValueOf(raw).Elem())
	b := &builder{errs: &errList{}, cfg: &Config{}}
	return (&optionsBuilder{builder: b, key: "callout.services.default"}).options(raw)
}

func (m *rawMilter) setDefaults() {
	m.Listen = []string{DefaultListen}
	m.SocketMode = DefaultSocketMode
	m.MaxSessions = DefaultMaxSessions
	m.MaxTransactions = DefaultMaxTransactions
	m.LogLevel = logLevel(slog.LevelInfo)
	m.LogFormat = "text"
	m.SpoolMemory = DefaultSpoolMemory
	m.MaxMessageSize = DefaultMaxMessageSize
	m.Oversize = oversizeAction(DefaultOversize)
	m.QuarantineHdr = DefaultQuarantineHeader
	m.MaxHeaderChanges = DefaultMaxHeaderChanges
	m.MaxHeaderChangeBytes = DefaultMaxHeaderChangeBytes
	m.MaxAddedRecipients = DefaultMaxAddedRecipients
	m.MaxAdaptedSize = -1 // max_message_size
	m.MaxConnections = DefaultMaxConnections
	m.TransactionIdleTimeout = duration(DefaultTransactionIdleTimeout)
}

func (t *rawTimeouts) setDefaults() {
	*t = rawTimeouts{
		Connect:          duration(DefaultConnectTimeout),
		Mail:             duration(DefaultMailTimeout),
		Rcpt:             duration(DefaultRcptTimeout),
		EndOfMessage:     duration(DefaultEOMTimeout),
		ProgressInterval: duration(DefaultProgressInterval),
	}
}

func (m *rawMTA) setDefaults() {
	m.CommandTimeout = duration(DefaultMTACommandTimeout)
	m.ContentTimeout = duration(DefaultMTAContentTimeout)
}

func (t *rawTrace) setDefaults() { t.Via = true }

func (s *rawServer) setDefaults() {
	s.Connections = DefaultConnections
	s.ConnectTimeout = duration(DefaultDialTimeout)
	s.HandshakeTimeout = duration(DefaultHandshakeTimeout)
	s.IdleTimeout = duration(DefaultIdleTimeout)
	s.FailureLimit = DefaultFailureLimit
	s.RevivalDelay = duration(DefaultRevivalDelay)
	s.ResolveInterval = duration(DefaultResolveInterval)
}

func (t *rawTLS) setDefaults() { t.Enabled = true }

func (c *rawCallout) setDefaults() {
	c.Listen = []string{DefaultCalloutListen}
	c.LogLevel = logLevel(slog.LevelInfo)
	c.LogFormat = "text"
	c.MaxConnections = DefaultCalloutMaxConnections
	c.IdleTimeout = duration(DefaultCalloutIdleTimeout)
	c.HandshakeTimeout = duration(DefaultCalloutHandshakeTimeout)
	c.DrainTimeout = duration(DefaultCalloutDrainTimeout)
}

func (r *rawRecipientPolicy) setDefaults() { r.Reply = DefaultRecipientReply }

func (a *rawAttachmentFilter) setDefaults() {
	a.Action = "remove"
	a.Signed = "pass"
	a.Unparsable = "reject"
	a.Reply = DefaultAttachmentReply
	a.Replacement = DefaultAttachmentReplacement
}

func (c *rawCommand) setDefaults() {
	c.Timeout = duration(DefaultCommandTimeout)
	c.Default = "tempfail"
	c.Reply = DefaultCommandReply
	c.MaxOutput = DefaultCommandMaxOutput
}

func (s *rawSizeLimit) setDefaults() { s.Reply = DefaultSizeLimitReply }
