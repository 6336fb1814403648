package milter

import (
	"errors"
	"fmt"
	"strings"

	gomilter "github.com/d--j/go-milter"
	"github.com/d--j/go-milter/milterutil"

	"github.com/opes-milter/opes-milter/bridge"
)

// maxReplyLines is libmilter's limit for smfi_setmlreply.
const maxReplyLines = 32

// errBadReply is wrapped by replyReason errors.
var errBadReply = errors.New("invalid SMTP reply")

// customResponse builds the SMFIR_REPLYCODE for a Reject (class 5) or
// TempFail (class 4) reply carrying a code or text. It returns nil when the
// reply is only the kind (MTA default text).
func customResponse(r bridge.Reply, class int) (*gomilter.Response, error) {
	code := r.Code
	if code == 0 {
		if r.Text == "" {
			return nil, nil
		}
		code = 451
		if class == 5 {
			code = 550
		}
	}
	if code/100 != class {
		return nil, fmt.Errorf("%w: code %d for a %dxx reply", errBadReply, code, class)
	}
	reason, err := replyReason(code, r.Text)
	if err != nil {
		return nil, err
	}
	// go-milter's FormatResponse doubles '%' (for Sendmail's printf),
	// turns the "\n" separators into CRLF and repeats the code and the
	// enhanced code on every line: reason must carry none of that.
	return gomilter.RejectWithCodeAndReason(uint16(code), reason)
}

// replyReason validates the text of a reply and prepares it for go-milter:
// lines are separated by "\r\n" (no lone CR or LF, no NUL), an enhanced
// status code on the first line must have the class of code (Postfix
// refuses "554 4.7.1"), and the same code on later lines is removed
// because go-milter repeats the first line's one. Lines are joined with
// "\n".
func replyReason(code int, text string) (string, error) {
	if strings.IndexByte(text, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL in text", errBadReply)
	}
	lines := strings.Split(text, "\r\n")
	first := ""
	for i, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return "", fmt.Errorf("%w: CR or LF inside line %d", errBadReply, i+1)
		}
		esc, n := enhancedCode(l)
		if n == 0 {
			continue
		}
		if int(esc[0]-'0') != code/100 {
			return "", fmt.Errorf("%w: enhanced code %s does not match %d", errBadReply, esc, code)
		}
		switch {
		case i == 0:
			first = esc
		case esc == first:
			lines[i] = l[n:]
		default:
			return "", fmt.Errorf("%w: line %d has enhanced code %s, first line %q", errBadReply, i+1, esc, first)
		}
	}
	reason := strings.Join(lines, "\n")
	formatted, err := milterutil.FormatResponse(uint16(code), reason)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errBadReply, err)
	}
	if n := strings.Count(formatted, "\r\n") + 1; n > maxReplyLines {
		return "", fmt.Errorf("%w: %d lines, at most %d", errBadReply, n, maxReplyLines)
	}
	return reason, nil
}

// enhancedCode reports the RFC 3463 status code that starts l
// ("class.subject.detail": class 2, 4 or 5, subject and detail 1-3 digits,
// then a space or the end of the line) and how many bytes to cut to remove
// it with its space. It returns "", 0 when l does not start with one.
func enhancedCode(l string) (string, int) {
	if len(l) < 5 || !strings.ContainsRune("245", rune(l[0])) || l[1] != '.' {
		return "", 0
	}
	i := 2
	for part := 0; part < 2; part++ {
		start := i
		for i < len(l) && l[i] >= '0' && l[i] <= '9' {
			i++
		}
		if i == start || i-start > 3 {
			return "", 0
		}
		if part == 0 {
			if i >= len(l) || l[i] != '.' {
				return "", 0
			}
			i++
		}
	}
	switch {
	case i == len(l):
		return l, i
	case l[i] == ' ':
		return l[:i], i + 1
	}
	return "", 0
}
