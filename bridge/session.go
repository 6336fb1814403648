package bridge

import (
	"context"
	"io"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file is the contract between the MTA adapter (package milter, the only
// importer of go-milter) and the bridge. Nothing here knows about the milter
// wire protocol: an adapter for another MTA interface could drive the same
// Session.

// Handler creates one Session per MTA connection (one milter connection).
// *Bridge implements it.
type Handler interface {
	// Requirements says which MTA events, modification actions and macros
	// the loaded configuration needs, so the adapter negotiates only those.
	Requirements() Requirements
	// Replies says which events of Requirements().Replies a new MTA
	// connection needs replies to, from the configuration loaded now and
	// the bridge's load; the adapter asks the MTA not to wait for the
	// others (SMFIP_NR_*) on that connection. Asked once per connection,
	// before NewSession.
	Replies() Events
	// NewSession starts the state of one MTA connection, whose MTA waits
	// for replies to the events in replies only (what the adapter
	// negotiated). It returns an error (for example ErrOverloaded) when
	// the session must be refused; the adapter then answers 451 4.3.2 at
	// every event that has a reply.
	NewSession(ctx context.Context, replies Events) (Session, error)
}

// Requirements lists what the bridge needs from the MTA.
type Requirements struct {
	// Events the bridge wants to see. An event not wanted is negotiated
	// away (SMFIP_NO*), saving a round trip per event.
	Connect, Helo, Mail, Rcpt, Data, Headers, EndOfHeaders, Body bool
	// Replies are the events the bridge may answer with something other
	// than Continue; the adapter asks the MTA not to wait for a reply to
	// the others (SMFIP_NR_*), saving a round trip per event, and
	// Handler.Replies narrows them per connection. The bridge defers a
	// refusal it decides at an event without reply to end of message.
	// Zero means every wanted event.
	Replies Events
	// Actions the bridge may take at end of message.
	Actions Actions
	// Macros wanted per stage, by macro name without braces handling:
	// names are as the MTA spells them, e.g. "i", "{daemon_name}".
	Macros map[Stage][]string
}

// Events is a set of MTA events.
type Events uint32

// The MTA events, for Requirements.Replies.
const (
	EventConnect Events = 1 << iota
	EventHelo
	EventMail
	EventRcpt
	EventData
	EventHeader
	EventEndOfHeaders
	EventBody
	EventEndOfMessage
)

// Actions is a set of end-of-message modification capabilities.
type Actions uint32

// The modification actions a bridge may ask the MTA to allow.
const (
	ActAddHeader Actions = 1 << iota
	ActChangeHeader
	ActReplaceBody
	ActAddRcpt
	ActDelRcpt
	ActChangeFrom
	ActQuarantine
)

// Stage names a point of the MTA conversation, used for macro requests.
type Stage int

// The stages at which an MTA sends macros.
const (
	StageConnect Stage = iota
	StageHelo
	StageMail
	StageRcpt
	StageData
	StageEOM
	StageEOH
)

// Macros gives read access to the macros the MTA sent so far in this
// session ("i", "{daemon_name}", "v", ...). A missing macro reads as "".
type Macros interface {
	Get(name string) string
}

// Client describes the SMTP client as the MTA reports it at connect.
type Client struct {
	Hostname string // client host name as the MTA resolved it ("unknown" if none)
	Family   string // "tcp4", "tcp6", "unix" or "unknown"
	Addr     string // IP address without brackets or "IPv6:" prefix
	Port     uint16
}

// Session is the bridge's state for one MTA connection. The adapter calls
// its methods in MTA order from one goroutine; each call returns the reply
// for that event. Before EndOfMessage only Continue, Skip, Reject and
// TempFail replies are legal (see docs/profile.md, the milter reality table).
type Session interface {
	Connect(ctx context.Context, mac Macros, c Client) Reply
	Helo(ctx context.Context, mac Macros, name string) Reply
	// Mail receives the sender as the MTA passes it (with angle brackets)
	// and its ESMTP arguments.
	Mail(ctx context.Context, mac Macros, from string, args []string) Reply
	// Rcpt receives one recipient (with angle brackets) and its arguments.
	Rcpt(ctx context.Context, mac Macros, rcpt string, args []string) Reply
	Data(ctx context.Context, mac Macros) Reply
	// Header receives one header field; value is raw: it keeps its leading
	// space (SMFIP_HDR_LEADSPC) and folded lines are joined with "\r\n"
	// (the adapter converts the MTA's "\n").
	Header(ctx context.Context, mac Macros, name, value string) Reply
	EndOfHeaders(ctx context.Context, mac Macros) Reply
	// Body receives one body chunk (CRLF line ends, not dot-stuffed). The
	// chunk is owned by the callee after the call.
	Body(ctx context.Context, mac Macros, chunk []byte) Reply
	// EndOfMessage applies all modifications through mod, then returns the
	// final reply. mod.Progress may be called while waiting.
	EndOfMessage(ctx context.Context, mac Macros, mod Modifier) Reply
	// Abort ends the current mail transaction (RSET, or the MTA's abort);
	// connection state (client, HELO) is kept.
	Abort(ctx context.Context, mac Macros)
	// Close ends the session; it is called exactly once, last.
	Close()
}

// ReplyKind is what the bridge answers to one MTA event.
type ReplyKind int

// The kinds of reply.
const (
	// Continue: go on with the next event.
	Continue ReplyKind = iota
	// Skip: send no more events of this kind (RCPT, header, body chunk);
	// the adapter sends Continue when the MTA did not negotiate SKIP.
	Skip
	// Reject answers 5xx: Reply.SMTP when set, else the MTA's default.
	Reject
	// TempFail answers 4xx: Reply.SMTP when set, else the MTA's default.
	TempFail
	// Accept accepts the message with no further events. Only legal at
	// end of message.
	Accept
	// Discard accepts and silently drops the message. Only legal at end of
	// message.
	Discard
)

// Reply is the answer to one MTA event: a milter verdict, carrying the
// SMTP reply to give with a Reject or TempFail.
type Reply struct {
	Kind ReplyKind
	// SMTP is the reply for Reject (5xx) and TempFail (4xx); its zero value
	// leaves the reply to the MTA. The adapter formats multi-line replies
	// for the MTA and falls back to the MTA's default when SMTP.Validate
	// refuses it.
	SMTP ocpsmtp.Reply
}

// Modifier carries end-of-message modifications to the MTA. Header values
// are raw: the caller supplies the leading space.
type Modifier interface {
	AddHeader(name, value string) error
	// InsertHeader inserts a field at a global index (0 = top).
	InsertHeader(index int, name, value string) error
	// ChangeHeader changes the index-th (1-based) field called name; an
	// empty value deletes it.
	ChangeHeader(index int, name, value string) error
	// ReplaceBody replaces the whole body (CRLF line ends); it must be
	// called at most once per message.
	ReplaceBody(r io.Reader) error
	ChangeFrom(from, args string) error
	AddRecipient(rcpt, args string) error
	DeleteRecipient(rcpt string) error
	Quarantine(reason string) error
	// Progress tells the MTA that work is still going on.
	Progress() error
}
