package mapping

import (
	"log/slog"
	"slices"
	"time"
)

// Config is a loaded, validated and compiled configuration. It is
// immutable: share it between goroutines freely, and do not modify it or
// anything it points to. To apply a new file, load a new Config.
type Config struct {
	// File is the path the configuration was loaded from.
	File string

	// The opes-milter side. It is configured when Routes is not empty
	// (see HasMilter); the validator then requires a complete setup.
	Milter   Milter
	Trace    Trace
	Bypass   Bypass
	Servers  []*ServerSet // sorted by name
	Services []*Service   // sorted by name
	Chains   []*Chain     // sorted by name
	Routes   []*Route     // in file order; the first that matches wins
	Skips    []*SkipRule  // in file order

	// Callout is the opes-callout side, nil when the file has no
	// [callout] table.
	Callout *Callout

	// pos are the places of the file's keys, for CompareCallout.
	pos positions
}

// HasMilter reports whether the file configures opes-milter.
func (c *Config) HasMilter() bool { return len(c.Routes) > 0 }

// Server returns the callout server set called name.
func (c *Config) Server(name string) (*ServerSet, bool) { return byName(c.Servers, name) }

// Service returns the OPES service called name.
func (c *Config) Service(name string) (*Service, bool) { return byName(c.Services, name) }

// Chain returns the chain called name.
func (c *Config) Chain(name string) (*Chain, bool) { return byName(c.Chains, name) }

type named interface{ name() string }

func byName[T named](list []T, name string) (T, bool) {
	for _, v := range list {
		if v.name() == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// Milter holds the settings of the opes-milter daemon itself.
type Milter struct {
	// Listen are the milter sockets, in Postfix syntax in the file.
	Listen []Socket
	// MaxSessions bounds concurrent MTA connections; beyond it a new
	// connection is answered 451 4.3.2.
	MaxSessions int
	// MaxTransactions bounds OCP transactions in flight over all callout
	// servers.
	MaxTransactions int
	LogLevel        slog.Level
	LogFormat       string // "text" or "json"
	// MetricsListen is a host:port for the metrics endpoint, "" for none.
	MetricsListen string
	// Pprof serves Go's profiles (/debug/pprof/) on MetricsListen too.
	Pprof bool
	// MaxProcs is how many CPUs run the daemon's Go code at once
	// (GOMAXPROCS); 0 chooses (see cmd/internal/procs).
	MaxProcs int
	// SpoolDir is where adapted bodies larger than SpoolMemory are kept
	// (files of mode 0600); "" means os.TempDir().
	SpoolDir    string
	SpoolMemory int64
	// MaxMessageSize is the largest message sent to a callout server;
	// Oversize says what happens to a larger one.
	MaxMessageSize int64
	Oversize       Action
	// AnswerLimits bound what a callout server may ask of the MTA per
	// message; beyond one the transaction is a protocol failure.
	AnswerLimits AnswerLimits
	// Resolver is the host:port of the DNS server that resolves the names
	// in server sets' addresses; "" means the system's resolver.
	Resolver string
	// MaxConnections caps the MTA connections served at once.
	MaxConnections int
	// TransactionIdleTimeout closes a session idle inside a mail
	// transaction (or inside a packet) for that long.
	TransactionIdleTimeout time.Duration
	// NonSMTPDaemons are the {daemon_name} values that mark mail entering
	// without SMTP (Postfix non_smtpd_milters through a cleanup service
	// with its own milter_macro_daemon_name): recipients are never refused
	// at RCPT there (docs/profile.md 1).
	NonSMTPDaemons []string
	// QuarantineHeader names the header field that a message quarantined
	// by the failure policy gets, saying why ("" for none); a service that
	// quarantines adds its own.
	QuarantineHeader string
	Timeouts         Timeouts
	// MTA holds the MTA's own milter timeouts the stage deadlines were
	// checked against.
	MTA MTALimits
}

// AnswerLimits bound, per message, what a callout server may ask of the
// MTA (docs/security.md C4).
type AnswerLimits struct {
	// HeaderChanges counts Add-Header answers.
	HeaderChanges int
	// HeaderChangeBytes counts the Add-Header fields and the adapted
	// header parts (ALLHEADERS, SINGLEHEADERS) the server sent.
	HeaderChangeBytes int64
	// AddedRecipients counts the recipients the server added.
	AddedRecipients int
	// AdaptedSize counts the adapted data the server sent; by default
	// max_message_size.
	AdaptedSize int64
}

// IsNonSMTP reports whether daemonName marks the non-SMTP path.
func (m *Milter) IsNonSMTP(daemonName string) bool {
	for _, d := range m.NonSMTPDaemons {
		if d == daemonName {
			return true
		}
	}
	return false
}

// Timeouts are the per-stage deadlines for the callout exchange, each
// counted from the MTA event to the reply opes-milter sends the MTA.
type Timeouts struct {
	Connect, Mail, Rcpt time.Duration
	EndOfMessage        time.Duration
	// ProgressInterval is how often opes-milter tells the MTA that it is
	// still working at end of message.
	ProgressInterval time.Duration
}

// MTALimits are the milter timeouts of the MTA in front of opes-milter.
// Command is the time the MTA waits for the reply to a pre-DATA event
// (Sendmail T=R:10s, Postfix milter_command_timeout 30s); Content bounds
// end of message (Postfix milter_content_timeout 300s, Sendmail T=E:5m).
type MTALimits struct {
	Command, Content time.Duration
}

// Trace is the identity opes-milter writes into OPES trace headers.
type Trace struct {
	// SystemURI is the OPES-System entry (RFC 3897).
	SystemURI string
	// PrivacyURI is the privacy policy URI, "" for none.
	PrivacyURI string
	// Via also adds an OPES-Via header naming the services applied.
	Via bool
}

// Bypass is the policy for OPES bypass requests found in messages.
type Bypass struct {
	// Header honours an OPES-Bypass header field in the message.
	Header bool
	// Allowed are the service URIs that may be bypassed; others never are.
	Allowed []string
	// Any is set when Allowed contains "*".
	Any bool
}

// Allows reports whether a bypass request may skip the service with this
// URI.
func (b *Bypass) Allows(uri string) bool {
	if !b.Header {
		return false
	}
	return b.Any || slices.Contains(b.Allowed, uri)
}
