package builtin

import (
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/mimetext"
	"github.com/opes-milter/opes-milter/mapping"
)

// removeFields returns the edits that remove every top-level header field
// for which drop holds.
func removeFields(root *callout.Section, drop func(f callout.HeaderField) bool) []callout.Edit {
	var edits []callout.Edit
	for _, f := range root.Fields {
		if drop(f) {
			edits = append(edits, callout.Edit{Offset: f.Offset, End: f.End})
		}
	}
	return edits
}

// fromDomain returns the domain (lower case, without a final dot) of the
// one address of a From field value; ok is false when the value does not
// hold exactly one address.
func fromDomain(v string) (string, bool) {
	doms, err := addressDomains(v)
	if err != nil || len(doms) != 1 {
		return "", false
	}
	return doms[0], true
}

// addressDomains returns the domains (lower case, without a final dot) of
// the addresses of an address-list field value, in order. The display
// names do not count: their encoded words decode in any charset, an
// unknown one left undecoded, so that no charset makes an address
// unreadable (net/mail knows only UTF-8, Latin-1 and ASCII: a
// =?koi8-r?...?= name hid the address from DMARC and from the signer).
func addressDomains(v string) ([]string, error) {
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
		if out, err := mimetext.CharsetReader(cs, r); err == nil {
			return out, nil
		}
		return r, nil
	}}}
	addrs, err := p.ParseList(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		_, dom, _ := strings.Cut(a.Address, "@")
		out = append(out, strings.ToLower(strings.TrimSuffix(dom, ".")))
	}
	return out, nil
}

// withoutPrefixed returns msg without its top-level fields whose name
// starts with prefix (msg itself when it has none) and how many went.
// The scanner services remove such incoming fields (a forged
// X-Spam-Status) whatever their verdict.
func withoutPrefixed(msg *callout.Message, root *callout.Section, prefix string) (*callout.Message, int, error) {
	edits := removeFields(root, func(f callout.HeaderField) bool { return hasPrefixFold(f.Name, prefix) })
	if len(edits) == 0 {
		return msg, 0, nil
	}
	m, err := msg.Splice(edits...)
	return m, len(edits), err
}

// setField returns msg with its first top-level field called name
// replaced by line (a whole field ending in CRLF), or line added after
// the last field when there is none.
func setField(msg *callout.Message, root *callout.Section, name string, line []byte) (*callout.Message, error) {
	if f, ok := root.Field(name); ok {
		return msg.Splice(callout.Edit{Offset: f.Offset, End: f.End, Data: line})
	}
	at := root.Offset
	if n := len(root.Fields); n > 0 {
		at = root.Fields[n-1].End
	}
	return msg.Splice(callout.Edit{Offset: at, End: at, Data: line})
}

// notScanned is a scanner service's decision for a message over its
// max_size: logged, and traced in field (X-Spam-Scanned) so that the
// mailbox shows it was not scanned rather than found clean. out is the
// message to pass on (msg, or msg without incoming fields).
func notScanned(tx *callout.Tx, service, field string, msg, out *callout.Message, max int64) callout.Decision {
	tx.Log().Warn(service+": message not scanned: over max_size", "size", msg.Size(), "max_size", max)
	d := callout.Keep()
	if out != msg {
		d = callout.ReplaceMessage(out)
	}
	return d.WithHeader(field, fmt.Sprintf("no, message of %d bytes over max_size %d", msg.Size(), max)).
		Because("over max_size, not scanned")
}

// hasPrefixFold reports whether the field name starts with prefix, in any
// case.
func hasPrefixFold(name, prefix string) bool {
	return prefix != "" && len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix)
}

// dkimProtected reports whether a cosmetic change to msg would break a
// DKIM signature that matters: one that auth-verify, earlier in the
// chain, found valid. Without auth-verify in the chain any DKIM-Signature
// field counts (nothing verified it, so leaving the message alone is the
// safe side).
func dkimProtected(tx *callout.Tx, root *callout.Section) (bool, string) {
	if tx.Auth != nil {
		if tx.Auth.DKIMPass() {
			return true, "DKIM signature verified"
		}
		return false, ""
	}
	if _, ok := root.Field("DKIM-Signature"); ok {
		return true, "DKIM signature present (not verified: no auth-verify before this service)"
	}
	return false, ""
}

// skipSigned reports whether a cosmetic service with policy dkim leaves
// the message alone, logging why.
func skipSigned(tx *callout.Tx, root *callout.Section, policy, what string) bool {
	if policy == mapping.DKIMModify {
		return false
	}
	if ok, why := dkimProtected(tx, root); ok {
		tx.Log().Info(what+": signed message left unchanged", "reason", why)
		return true
	}
	return false
}

// foldList writes items separated by sep after a field name of nameLen
// characters, folding lines before 78 characters.
func foldList(nameLen int, items []string, sep string) string {
	var b strings.Builder
	col := nameLen + 2
	for i, it := range items {
		s := it
		if i < len(items)-1 {
			s += sep
		}
		if i > 0 && col+len(s) > 76 {
			b.WriteString("\r\n\t")
			col = 1
			s = strings.TrimLeft(s, " ")
		}
		b.WriteString(s)
		col += len(s)
	}
	return b.String()
}

// foldText folds free text (a report) into lines of at most about 76
// characters, keeping its own line breaks as folds.
func foldText(text string) string {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		l = strings.TrimRight(l, " \t")
		if strings.TrimSpace(l) == "" {
			continue
		}
		l = strings.Map(func(r rune) rune {
			if r < ' ' || r > '~' {
				return '?'
			}
			return r
		}, strings.TrimLeft(l, " \t"))
		lines = append(lines, truncate(l, 900))
	}
	return strings.Join(lines, "\r\n\t")
}
