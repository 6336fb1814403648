package builtin

import (
	"bytes"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/mimetext"
)

// appendToText returns the edits that add footer (UTF-8, CRLF) to the text
// section s, or a reason why s is left alone.
func appendToText(msg *callout.Message, s *callout.Section, footer string) ([]callout.Edit, string) {
	if len(s.Problems) > 0 {
		return nil, "malformed: " + strings.Join(s.Problems, "; ")
	}
	if s.Protected() {
		return nil, "signed or encrypted"
	}
	if s.End-s.BodyOffset > maxTextPart {
		return nil, "too large"
	}
	cte := s.TransferEncoding()
	raw, err := msg.Bytes(s.BodyOffset, s.End)
	if err != nil {
		return nil, err.Error()
	}
	text, err := mimetext.DecodeTransfer(cte, raw)
	if err != nil {
		return nil, err.Error()
	}
	charset := s.Charset()
	switch {
	case charset == "us-ascii" && !mimetext.IsASCII(text):
		return nil, "us-ascii part holds 8-bit bytes"
	case (charset == "utf-8" || charset == "utf8") && !utf8.Valid(text):
		return nil, "utf-8 part holds invalid UTF-8"
	}
	isHTML := s.MediaType == "text/html"

	newCharset := charset
	add, err := mimetext.EncodeCharset(charset, footer)
	if err != nil {
		switch {
		case charset == "us-ascii":
			newCharset, add = "utf-8", []byte(footer)
		case isHTML:
			return nil, "footer not representable in " + charset + " (HTML left alone)"
		default:
			u, err := mimetext.DecodeCharset(charset, text)
			if err != nil || bytes.ContainsRune(u, utf8.RuneError) {
				return nil, "cannot transcode " + charset + " to utf-8"
			}
			text, newCharset, add = u, "utf-8", []byte(footer)
		}
	}

	// Where the footer goes, in the decoded text.
	at := len(text)
	if isHTML {
		if i := lastIndexFold(text, []byte("</body>")); i >= 0 {
			at = i
		}
	}
	endsWithBreak := bytes.HasSuffix(text[:at], []byte("\n"))
	ins := add
	if at == len(text) {
		// Appending: start on a line of its own, and keep the part's
		// habit of ending (or not) with a line break.
		ins = nil
		if len(text) > 0 && !endsWithBreak {
			ins = append(ins, "\r\n"...)
		}
		ins = append(ins, add...)
		switch {
		case !endsWithBreak:
			ins = bytes.TrimSuffix(ins, []byte("\r\n"))
		case !bytes.HasSuffix(ins, []byte("\n")):
			ins = append(ins, "\r\n"...)
		}
	}
	newText := make([]byte, 0, len(text)+len(ins))
	newText = append(append(append(newText, text[:at]...), ins...), text[at:]...)

	newCTE := cte
	switch {
	case cte == "7bit" && !mimetext.FitsIdentity(newText, true), cte == "8bit" && !mimetext.FitsIdentity(newText, false):
		newCTE = "quoted-printable"
	}

	var edits []callout.Edit
	if newCharset != charset || newCTE != cte {
		edits = append(edits, headerEdits(s, newCharset, newCTE)...)
	}
	switch {
	case newCTE == cte && newCharset == charset && (cte == "7bit" || cte == "8bit" || cte == "binary"):
		// The raw body is the text: insert, keep every other byte.
		off := s.BodyOffset + int64(at)
		edits = append(edits, callout.Edit{Offset: off, End: off, Data: ins})
	case newCTE == cte && newCharset == charset && cte == "quoted-printable" && at == len(text):
		// Appending to quoted-printable: encode the addition only.
		enc, err := mimetext.EncodeTransfer(cte, ins)
		if err != nil {
			return nil, err.Error()
		}
		if !endsWithBreak {
			enc = bytes.TrimSuffix(enc, []byte("\r\n"))
		}
		if len(raw) > 0 && !bytes.HasSuffix(raw, []byte("\n")) && !bytes.HasPrefix(ins, []byte("\r\n")) {
			enc = append([]byte("=\r\n"), enc...)
		}
		edits = append(edits, callout.Edit{Offset: s.End, End: s.End, Data: enc})
	default:
		enc, err := mimetext.EncodeTransfer(newCTE, newText)
		if err != nil {
			return nil, err.Error()
		}
		if !bytes.HasSuffix(raw, []byte("\n")) {
			enc = bytes.TrimSuffix(enc, []byte("\r\n"))
		}
		edits = append(edits, callout.Edit{Offset: s.BodyOffset, End: s.End, Data: enc})
	}
	return edits, ""
}

// headerEdits rewrites the Content-Type charset and the
// Content-Transfer-Encoding of s, leaving its other fields alone.
func headerEdits(s *callout.Section, charset, cte string) []callout.Edit {
	params := make(map[string]string, len(s.Params)+1)
	for k, v := range s.Params {
		params[k] = v
	}
	params["charset"] = charset
	ct := "Content-Type: " + mime.FormatMediaType(s.MediaType, params) + "\r\n"
	te := "Content-Transfer-Encoding: " + cte + "\r\n"
	var edits []callout.Edit
	ctf, hasCT := s.Field("Content-Type")
	tef, hasTE := s.Field("Content-Transfer-Encoding")
	insertAt := s.Offset
	if n := len(s.Fields); n > 0 {
		insertAt = s.Fields[n-1].End
	}
	if hasCT {
		edits = append(edits, callout.Edit{Offset: ctf.Offset, End: ctf.End, Data: []byte(ct)})
	} else {
		edits = append(edits, callout.Edit{Offset: insertAt, End: insertAt, Data: []byte(ct)})
	}
	if hasTE {
		if !strings.EqualFold(tef.Value(), cte) {
			edits = append(edits, callout.Edit{Offset: tef.Offset, End: tef.End, Data: []byte(te)})
		}
	} else if cte != "7bit" {
		edits = append(edits, callout.Edit{Offset: insertAt, End: insertAt, Data: []byte(te)})
	}
	return edits
}

// lastIndexFold is bytes.LastIndex without regard to ASCII case.
func lastIndexFold(s, sep []byte) int {
	for i := len(s) - len(sep); i >= 0; i-- {
		if bytes.EqualFold(s[i:i+len(sep)], sep) {
			return i
		}
	}
	return -1
}
