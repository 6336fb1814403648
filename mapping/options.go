package mapping

import (
	"regexp"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// RecipientPolicy rejects or rewrites recipients (kind recipient-policy).
// Addresses are compared in lower case, without angle brackets.
type RecipientPolicy struct {
	// Deny lists addresses to reject; DenyDomains their domains;
	// DenyPatterns regular expressions over the whole address.
	Deny         []string
	DenyDomains  []string
	DenyPatterns []*regexp.Regexp
	// Allow and AllowDomains override the deny lists.
	Allow        []string
	AllowDomains []string
	// Reply answers a denied recipient.
	Reply ocpsmtp.Reply
	// Aliases rewrite a recipient address into another.
	Aliases map[string]string
}

// SenderRewrite rewrites the envelope sender (kind sender-rewrite).
type SenderRewrite struct {
	// Addresses maps a whole address to its replacement; Domains maps a
	// domain to another, keeping the local part. Keys are lower case.
	Addresses map[string]string
	Domains   map[string]string
}

// HeaderTag adds header fields (kind header-tag). Values may use
// "{service}" (the service URI) and "{time}" (RFC 5322 date), expanded by
// the callout server.
type HeaderTag struct {
	// Headers are name/value pairs, sorted by name.
	Headers []Header
}

// Header is one header field.
type Header struct{ Name, Value string }

// SubjectTag prefixes the Subject (kind subject-tag).
type SubjectTag struct {
	Prefix string
	// MatchSenderOutside limits tagging to senders whose domain is none
	// of these (lower case); empty means every sender.
	MatchSenderOutside []string
	// DKIM is DKIMSkip (leave a message whose DKIM signature verified
	// unchanged) or DKIMModify.
	DKIM string
}

// Disclaimer appends text to the text parts of a message (kind
// disclaimer): Text to text/plain parts, HTML to text/html parts (Text,
// escaped, when HTML is empty).
type Disclaimer struct {
	Text, HTML string
	// DKIM is DKIMSkip (leave a message whose DKIM signature verified
	// unchanged) or DKIMModify.
	DKIM string
}

// AttachmentFilter acts on attachments (kind attachment-filter).
type AttachmentFilter struct {
	// Extensions are lower case file name extensions with the dot
	// (".exe"); ContentTypes are "type/subtype" or "type/*", lower case.
	Extensions   []string
	ContentTypes []string
	// MaxSize, when not 0, also matches attachments larger than that.
	MaxSize int64
	// Action is "remove", "replace" (by a text part saying what was
	// removed) or "reject" (the whole message, with Reply).
	Action      string
	Replacement string
	Reply       ocpsmtp.Reply
	// Signed is what happens to a signed message (multipart/signed,
	// S/MIME) that holds a matching attachment: "reject" or "pass"
	// (left unchanged, since changing it breaks the signature).
	Signed string
	// Unparsable is what happens to a message whose MIME structure the
	// filter cannot read to the end (a parser limit: more header fields
	// than it reads before a part's Content-Type, deeper nesting): it
	// could hide a matching attachment. "reject" (with Reply),
	// "quarantine" (held by the MTA) or "fail" (the transaction fails and
	// the processor's failure policy applies).
	Unparsable string
}

// Command pipes the message through an external program (kind command).
type Command struct {
	Argv    []string
	Timeout time.Duration
	// ExitCodes maps an exit status to "pass" (message unchanged),
	// "replace" (the program's output is the adapted message), "reject"
	// (with Reply) or "tempfail". Default applies to the other statuses.
	ExitCodes map[int]string
	Default   string
	Reply     ocpsmtp.Reply
	// MaxOutput bounds the program's output.
	MaxOutput int64
}

// SizeLimit rejects messages larger than Max (kind size-limit).
type SizeLimit struct {
	Max   int64
	Reply ocpsmtp.Reply
}

// Kind implements Options.
func (*RecipientPolicy) Kind() Kind { return KindRecipientPolicy }

// Kind implements Options.
func (*SenderRewrite) Kind() Kind { return KindSenderRewrite }

// Kind implements Options.
func (*HeaderTag) Kind() Kind { return KindHeaderTag }

// Kind implements Options.
func (*SubjectTag) Kind() Kind { return KindSubjectTag }

// Kind implements Options.
func (*Disclaimer) Kind() Kind { return KindDisclaimer }

// Kind implements Options.
func (*AttachmentFilter) Kind() Kind { return KindAttachmentFilter }

// Kind implements Options.
func (*Command) Kind() Kind { return KindCommand }

// Kind implements Options.
func (*SizeLimit) Kind() Kind { return KindSizeLimit }
