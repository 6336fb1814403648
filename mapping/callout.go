package mapping

import (
	"log/slog"
	"time"
)

// Callout holds the settings of the opes-callout daemon ([callout]).
type Callout struct {
	// Listen are host:port addresses for OCP.
	Listen []string
	// TLS is nil for plain TCP.
	TLS           *TLS
	MetricsListen string
	// Pprof serves Go's profiles (/debug/pprof/) on MetricsListen too.
	Pprof bool
	// MaxProcs is how many CPUs run the daemon's Go code at once
	// (GOMAXPROCS); 0 chooses (see cmd/internal/procs).
	MaxProcs  int
	LogLevel  slog.Level
	LogFormat string // "text" or "json"
	// MaxConnections bounds concurrent OCP connections.
	MaxConnections int
	// IdleTimeout closes an OCP connection without transactions for that
	// long; HandshakeTimeout bounds the wait for the first messages.
	IdleTimeout, HandshakeTimeout time.Duration
	// DrainTimeout bounds how long transactions in flight may take after
	// SIGTERM (docs/profile.md 3.2).
	DrainTimeout time.Duration
	// Services are sorted by name.
	Services []*CalloutService
}

// Service returns the callout service whose URI is uri.
func (c *Callout) Service(uri string) (*CalloutService, bool) {
	for _, s := range c.Services {
		if s.URI == uri {
			return s, true
		}
	}
	return nil, false
}

// CalloutService is a service opes-callout offers ([callout.services.NAME]).
type CalloutService struct {
	Name string
	// URI is the service ID the processor names in SGC.
	URI  string
	Kind Kind
	// Options is the kind-specific part: *RecipientPolicy, *SenderRewrite,
	// *HeaderTag, *SubjectTag, *Disclaimer, *AttachmentFilter, *Command or
	// *SizeLimit, *Clamd or *ICAP, matching Kind.
	Options Options
}

// Kind is the kind of a built-in callout service.
type Kind string

// The built-in service kinds.
const (
	KindRecipientPolicy  Kind = "recipient-policy"
	KindSenderRewrite    Kind = "sender-rewrite"
	KindHeaderTag        Kind = "header-tag"
	KindSubjectTag       Kind = "subject-tag"
	KindDisclaimer       Kind = "disclaimer"
	KindAttachmentFilter Kind = "attachment-filter"
	KindCommand          Kind = "command"
	KindSizeLimit        Kind = "size-limit"
)

// Options is the kind-specific configuration of a callout service.
type Options interface {
	Kind() Kind
}
