package callout

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Service is one OPES mail service. It declares the parts it adapts and
// the parts it only reads, and implements one or more of MailAdapter,
// RcptAdapter and MessageAdapter. A Service is shared by all connections
// and must be safe for concurrent use.
type Service interface {
	Needs() Needs
}

// Needs is what a service works on. A service that changes the message
// adapts RAWDATA, or only what it needs of it: ALLHEADERS (the header
// section), SINGLEHEADERS (the fields named in HeaderList), BODY, or
// SECTIONS (each leaf MIME entity on its own). The server negotiates
// exactly those parts for a chain (merged with ocpsmtp.Merge: parts that
// exclude each other widen to RAWDATA), so a chain that needs only the
// header gets no body octet over the connection. MessageAdapter services
// see a Message built from what was negotiated (docs/profile.md 6).
// Connection facts (IP, HELO) and the sender are read, never adapted,
// unless the service implements MailAdapter.
type Needs struct {
	Adapt []ocpsmtp.Part
	Read  []ocpsmtp.Part
	// HeaderList names the header fields a service reading or adapting
	// SINGLEHEADERS needs ("*" or nil: all).
	HeaderList []string
}

// Adapts reports whether p is among the adapted parts.
func (n Needs) Adapts(p ocpsmtp.Part) bool { return slices.Contains(n.Adapt, p) }

// Reads reports whether p is read or adapted.
func (n Needs) Reads(p ocpsmtp.Part) bool { return n.Adapts(p) || slices.Contains(n.Read, p) }

// MailAdapter is implemented by services that adapt the envelope sender
// (part MAIL). The decision may keep, replace or refuse it.
type MailAdapter interface {
	AdaptMail(ctx context.Context, tx *Tx, from Address) (Decision, error)
}

// RcptAdapter is implemented by services that adapt recipients (part
// RCPT). It is called once per recipient.
type RcptAdapter interface {
	AdaptRcpt(ctx context.Context, tx *Tx, rcpt Address) (Decision, error)
}

// MessageAdapter is implemented by services that adapt the message (part
// RAWDATA). msg is valid for the duration of the call; a service that
// replaces it returns a new Message (see Message.Splice and Spool).
type MessageAdapter interface {
	AdaptMessage(ctx context.Context, tx *Tx, msg *Message) (Decision, error)
}

// Client holds the connection facts of a transaction (parts IP and
// HELO/EHLO).
type Client struct {
	// IP is the SMTP client's address as the processor sent it.
	IP string
	// Helo is the HELO or EHLO argument.
	Helo string
}

// Tx is what a service knows about the SMTP transaction it works on. The
// layer fills it as parts arrive; services read it and must not keep it
// after the call.
type Tx struct {
	// ID identifies the transaction in logs ("connection/xid").
	ID string
	// Service is the URI of the service being called, as named in SGC.
	Service string
	// Client holds the connection facts.
	Client Client
	// Sender is the envelope sender after the services before this one
	// (zero until MAIL arrives).
	Sender Address
	// Recipients are the recipients accepted so far, as adapted.
	Recipients []Address
	// Opts are the processor's AM-OPT facts (authentication, TLS, queue
	// id), see ocpsmtp.Opt.
	Opts []ocpsmtp.Opt
	// Start is when the transaction started.
	Start time.Time
	// Auth is what an auth-verify service earlier in the chain found
	// about the message (nil when none ran).
	Auth *AuthResults
	// Logger logs with the transaction's attributes; never nil.
	Logger *slog.Logger

	// reasons are the services' reasons for their decisions, "name:
	// reason" in the order given, for the transaction's log line.
	reasons []string
}

// Opt returns the AM-OPT value for key (ocpsmtp.OptAuthAuthen, ...) or "".
func (tx *Tx) Opt(key string) string {
	for _, o := range tx.Opts {
		if o.Key == key {
			return o.Value
		}
	}
	return ""
}

// log returns the transaction's logger, a discarding one when unset.
func (tx *Tx) Log() *slog.Logger {
	if tx.Logger == nil {
		tx.Logger = slog.New(slog.DiscardHandler)
	}
	return tx.Logger
}

// AuthUser returns the SASL login name of the client, "" when it did not
// authenticate.
func (tx *Tx) AuthUser() string { return tx.Opt(ocpsmtp.OptAuthAuthen) }
