package milter

import (
	"errors"
	"fmt"
	"strings"

	gomilter "github.com/d--j/go-milter"
	"github.com/d--j/go-milter/milterutil"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// errBadReply is wrapped by replyReason errors.
var errBadReply = errors.New("invalid SMTP reply")

// customResponse builds the SMFIR_REPLYCODE for a Reject (class 5) or
// TempFail (class 4) reply carrying a code or text. It returns nil when the
// reply is only the kind (MTA default text).
func customResponse(r bridge.Reply, class int) (*gomilter.Response, error) {
	rep := r.SMTP
	if rep.Code == 0 {
		if rep.Text == "" {
			return nil, nil
		}
		rep.Code = 451
		if class == 5 {
			rep.Code = 550
		}
	}
	if rep.Code/100 != class {
		return nil, fmt.Errorf("%w: code %d for a %dxx reply", errBadReply, rep.Code, class)
	}
	reason, err := replyReason(rep)
	if err != nil {
		return nil, err
	}
	// go-milter's FormatResponse doubles '%' (for Sendmail's printf),
	// turns the "\n" separators into CRLF and repeats the code and the
	// enhanced code on every line: reason must carry none of that.
	return gomilter.RejectWithCodeAndReason(uint16(rep.Code), reason)
}

// replyReason validates a reply with the profile's one validator
// (ocpsmtp.Reply.Validate: the code, an enhanced status code of the code's
// class, no control characters, at most 32 lines, libmilter's
// smfi_setmlreply bound) and prepares its text for go-milter: the enhanced
// code that later lines repeat is removed because go-milter repeats the
// first line's one, and lines are joined with "\n".
func replyReason(r ocpsmtp.Reply) (string, error) {
	if err := r.Validate(); err != nil {
		return "", fmt.Errorf("%w: %w", errBadReply, err)
	}
	lines := r.Lines()
	if first := r.Enhanced(); first != "" {
		for i := 1; i < len(lines); i++ {
			if rest, ok := strings.CutPrefix(lines[i], first); ok && (rest == "" || rest[0] == ' ') {
				lines[i] = strings.TrimPrefix(rest, " ")
			}
		}
	}
	reason := strings.Join(lines, "\n")
	if _, err := milterutil.FormatResponse(uint16(r.Code), reason); err != nil {
		return "", fmt.Errorf("%w: %v", errBadReply, err)
	}
	return reason, nil
}
