package bridge

import (
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Action is what a failure policy does with a message whose adaptation
// failed.
type Action int

// The failure actions (mapping's on_failure values).
const (
	// ActionTempFail answers 451: the message stays with the sender.
	ActionTempFail Action = iota
	// ActionReject answers 554: the message is refused.
	ActionReject
	// ActionAccept lets the message through unadapted, traced as such.
	ActionAccept
	// ActionQuarantine accepts it into the MTA's quarantine (Postfix:
	// hold queue), traced as unadapted.
	ActionQuarantine
)

// Route is a compiled route: which chain and profile a mail transaction
// takes.
type Route struct {
	Name    string
	Chain   *Chain
	Profile ocpsmtp.Profile // the profile offered for the chain's service group
}

// Chain is a compiled chain of OPES services on one callout server set.
type Chain struct {
	Name     string
	Services []ocp.Service
	Servers  *ServerSet
	// OnFailure maps each failure class to an action; a class missing
	// from the map means ActionTempFail.
	OnFailure map[FailureClass]Action
}

// ServerSet is a set of callout servers tried in order (failover) or in
// turn (round robin).
type ServerSet struct {
	Name         string
	Addresses    []string
	RoundRobin   bool
	Connections  int           // OCP connections per server
	IdleTimeout  time.Duration // close a connection unused this long (before the server does)
	Client       ocp.ClientConfig
	FailureLimit int           // consecutive failures before the breaker opens
	RevivalDelay time.Duration // how long an open breaker waits
}

// Timeouts are the per-stage deadlines for waiting on callout servers.
// Connect bounds reaching a server (dial, negotiation, TS) and Mail the
// answer to an adaptive MAIL, both inside Rcpt, which bounds everything
// the first RCPT waits for. Helo and Data bound nothing today: HELO is
// informative only and data parts are streamed without waiting; they stay
// as ceilings the configuration checks against the MTA.
type Timeouts struct {
	Connect, Helo, Mail, Rcpt, Data, EndOfMessage time.Duration
	Progress                                      time.Duration // PROGRESS interval at end of message
}

// Facts are what route selection may look at.
type Facts struct {
	DaemonName    string
	ClientAddr    string
	Authenticated bool
	SenderDomain  string
	RcptDomain    string
	NonSMTP       bool
}

// Policy is everything the bridge needs from the configuration. It is
// immutable once built; a reload builds a new one.
type Policy struct {
	Routes []*Route
	// Select returns the route for the facts, or nil when no route
	// matches (the message then passes without adaptation).
	Select func(Facts) *Route
	// Skip reports whether a skip rule exempts the message.
	Skip func(Facts) bool
	// NonSMTP reports whether a daemon name marks the non-SMTP path
	// (Postfix non_smtpd_milters, Sendmail -bs …), where recipients are
	// never refused at RCPT.
	NonSMTP func(daemonName string) bool

	SystemURI  string // OPES-System entry
	TraceVia   bool   // add OPES-Via too
	Bypassable func(serviceURI string) bool

	Timeouts Timeouts
	// MaxMessageSize bounds what is sent to a callout server; Oversize
	// says what happens to a larger message: ActionReject (552),
	// ActionTempFail (452) or ActionAccept (delivered unadapted, traced
	// as skipped).
	MaxMessageSize  int64
	Oversize        Action
	MaxSessions     int
	MaxTransactions int
	MaxHeaderBytes  int
	SpoolDir        string
	SpoolMemory     int
}
