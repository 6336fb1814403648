package builtin

import (
	"context"
	"html"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// maxTextPart bounds the text parts the disclaimer edits; larger ones are
// left alone.
const maxTextPart = 16 << 20

// Disclaimer appends a footer to the message text (kind disclaimer): Text
// to text/plain, HTML to text/html (before </body> when there is one).
// It edits the body text of the message only: a single text part, the
// alternatives of a multipart/alternative, the first part of a
// multipart/mixed or multipart/related, recursively. Attachments,
// embedded messages and anything signed or encrypted are never touched,
// and every part it does not edit stays byte-identical. A message with a
// DKIM signature that verified (or, without auth-verify before it in the
// chain, any DKIM-Signature) is left unchanged unless dkim = "modify".
//
// The footer is written in the part's charset and transfer encoding.
// When the charset cannot represent it, a us-ascii part becomes utf-8,
// another plain-text part is transcoded to utf-8, and an HTML part (whose
// markup may name its charset) is left alone. Parts that are malformed,
// mislabelled (bytes that are not in their charset) or in an unknown
// charset or encoding are left alone too.
type Disclaimer struct {
	text string // footer for text/plain, CRLF line breaks
	html string // footer for text/html
	dkim string // mapping.DKIMSkip or DKIMModify
}

// NewDisclaimer returns the service for opts.
func NewDisclaimer(opts *mapping.Disclaimer) *Disclaimer {
	d := &Disclaimer{text: toCRLF(opts.Text), html: toCRLF(opts.HTML), dkim: opts.DKIM}
	if d.html == "" && d.text != "" {
		d.html = "<p>" + strings.ReplaceAll(html.EscapeString(strings.TrimRight(d.text, "\r\n")), "\r\n", "<br>\r\n") + "</p>\r\n"
	}
	return d
}

func toCRLF(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// Needs implements Service: RAWDATA is adapted.
func (d *Disclaimer) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}

// AdaptMessage implements MessageAdapter.
func (d *Disclaimer) AdaptMessage(_ context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	root, err := msg.Root()
	if err != nil {
		return callout.Decision{}, err
	}
	if skipSigned(tx, root, d.dkim, "disclaimer") {
		return callout.Keep().Because("signed message left unchanged"), nil
	}
	var edits []callout.Edit
	for _, s := range bodyTextParts(root) {
		footer := d.text
		if s.MediaType == "text/html" {
			footer = d.html
		}
		if footer == "" {
			continue
		}
		e, why := appendToText(msg, s, footer)
		if why != "" {
			tx.Log().Info("disclaimer: part left alone", "part", pathString(s.Path), "reason", why)
			continue
		}
		edits = append(edits, e...)
	}
	if len(edits) == 0 {
		return callout.Keep().Because("no text part to edit"), nil
	}
	m, err := msg.Splice(edits...)
	if err != nil {
		return callout.Decision{}, err
	}
	return callout.ReplaceMessage(m).Because("footer added"), nil
}

// bodyTextParts returns the text/plain and text/html sections that make up
// the message text of s.
func bodyTextParts(s *callout.Section) []*callout.Section {
	switch {
	case callout.IsProtectedType(s.MediaType):
		return nil
	case s.MediaType == "text/plain" || s.MediaType == "text/html":
		if d, _ := s.Disposition(); d == "attachment" || s.Filename() != "" {
			return nil
		}
		return []*callout.Section{s}
	case s.MediaType == "multipart/alternative":
		var out []*callout.Section
		for _, p := range s.Parts {
			out = append(out, bodyTextParts(p)...)
		}
		return out
	case s.IsMultipart() && len(s.Parts) > 0:
		// mixed, related and unknown multiparts: the first part is the
		// message text, the rest attachments or inline resources.
		return bodyTextParts(s.Parts[0])
	}
	return nil
}

func pathString(path []int) string {
	if len(path) == 0 {
		return "root"
	}
	idx := make([]int, len(path))
	for i, n := range path {
		idx[i] = n + 1
	}
	return ocpsmtp.FormatIndex(idx...)
}
