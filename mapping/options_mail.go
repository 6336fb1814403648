package mapping

import (
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// The spam and authentication kinds of callout services: spamd, rspamd,
// auth-verify and dkim-sign.

// The spam and authentication kinds.
const (
	KindSpamd      Kind = "spamd"
	KindRspamd     Kind = "rspamd"
	KindAuthVerify Kind = "auth-verify"
	KindDKIMSign   Kind = "dkim-sign"
)

// DKIM policies of cosmetic services (the dkim key of disclaimer and
// subject-tag, and of the subject prefix of spamd and rspamd): what they
// do to a message that carries a DKIM signature that verified.
const (
	// DKIMSkip leaves such a message unchanged (the default), so the
	// signature keeps verifying for every later verifier. Adding header
	// fields stays allowed.
	DKIMSkip = "skip"
	// DKIMModify changes it all the same.
	DKIMModify = "modify"
)

// Backend is the connection to a scanner (spamd, rspamd): its address
// ("host:port", "unix:/path", "inet:port@host"), the deadline of one scan
// and the number of concurrent connections.
type Backend struct {
	Address  string
	Timeout  time.Duration
	MaxConns int
}

// Spamd scans messages with SpamAssassin's spamd (kind spamd) and acts on
// the score with amavisd-new's three thresholds.
type Spamd struct {
	Backend Backend
	// MaxSize: larger messages are not scanned (logged, and traced in a
	// header field).
	MaxSize int64
	// User is sent as spamd's User header ("" = none).
	User string
	// Request is "SYMBOLS", "REPORT" or "HEADERS".
	Request string
	// Compress sends the message zlib-compressed (spamd needs
	// Compress::Zlib).
	Compress bool
	// HeaderPrefix names the fields this service owns ("X-Spam-"): every
	// incoming field with it is removed first, whatever the verdict.
	HeaderPrefix string
	// Tag, Tag2 and Kill are the score thresholds (score >= threshold).
	Tag, Tag2, Kill float64
	// Tag2Actions are what happens at Tag2: "subject" (SubjectPrefix
	// before the Subject) and/or "quarantine".
	Tag2Actions   []string
	SubjectPrefix string
	// KillAction is "reject" (with Reply) or "quarantine".
	KillAction string
	Reply      ocpsmtp.Reply
	// DKIM is DKIMSkip or DKIMModify, for the subject prefix.
	DKIM string
}

// Rspamd scans messages with rspamd over HTTP (kind rspamd) and applies
// its action as rspamd's own milter proxy does.
type Rspamd struct {
	Backend Backend
	MaxSize int64
	// Password is sent in rspamd's Password header ("" = none).
	Password string
	// SettingsID is sent as Settings-ID ("" = none).
	SettingsID string
	// User is sent as User when the client did not authenticate ("" =
	// none); an authenticated client's login always is.
	User string
	// Greylist is what rspamd's greylist action does: "accept" (default:
	// without greylisting state a 4xx would defer such mail for ever) or
	// "tempfail".
	Greylist string
	// SpamHeader is the field "add header" adds ("X-Spam").
	SpamHeader string
	// SubjectPrefix is used by "rewrite subject" when rspamd sends no
	// subject ("***SPAM***").
	SubjectPrefix string
	// HeaderPrefix: incoming fields with it are removed first ("" = none;
	// rspamd's milter block says what else to remove).
	HeaderPrefix string
	// RejectReply and TempfailReply answer reject and soft reject when
	// rspamd gives no message of its own.
	RejectReply, TempfailReply ocpsmtp.Reply
	// MaxResponse bounds rspamd's JSON answer.
	MaxResponse int64
	DKIM        string
}

// AuthVerify verifies DKIM signatures, SPF and DMARC and writes one
// Authentication-Results field (kind auth-verify).
type AuthVerify struct {
	// AuthservID is the authserv-id of the Authentication-Results field;
	// incoming fields claiming it are removed.
	AuthservID string
	// Resolver is the DNS server ("host:port") asked for keys and
	// records; "" uses the system's resolver.
	Resolver string
	// Timeout bounds all lookups of one message.
	Timeout time.Duration
	// MaxSignatures bounds the DKIM signatures verified per message.
	MaxSignatures int
	// DKIM, SPF and DMARC turn each check on.
	DKIM, SPF, DMARC bool
	// DMARCReject is what a DMARC failure of a domain publishing
	// p=reject does: "none" (only reported) or "reject" (with Reply).
	DMARCReject string
	Reply       ocpsmtp.Reply
}

// DKIMSign signs outbound messages (kind dkim-sign).
type DKIMSign struct {
	// Keys is the signing table: the sender's domain (From header) to
	// the selector and the key file (PEM, RSA or Ed25519), sorted by
	// domain.
	Keys []DKIMKey
	// Headers are the header fields signed (when present).
	Headers []string
	// Expire, when not 0, sets the signature's x= that far ahead.
	Expire time.Duration
}

// DKIMKey is one entry of a signing table.
type DKIMKey struct {
	Domain, Selector, KeyFile string
}

// Kind implements Options.
func (*Spamd) Kind() Kind { return KindSpamd }

// Kind implements Options.
func (*Rspamd) Kind() Kind { return KindRspamd }

// Kind implements Options.
func (*AuthVerify) Kind() Kind { return KindAuthVerify }

// Kind implements Options.
func (*DKIMSign) Kind() Kind { return KindDKIMSign }

// DefaultDKIMSignHeaders returns the header set dkim-sign covers (RFC
// 6376 §5.4.1 and common signers), each once per occurrence plus once
// more for the fields a message should have only once, so none can be
// added later. Each call returns a new slice.
func DefaultDKIMSignHeaders() []string {
	return []string{
		"From", "Reply-To", "Subject", "Date", "To", "Cc", "In-Reply-To", "References",
		"Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
		"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc",
		"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
		"List-Unsubscribe-Post", "Sender",
	}
}
