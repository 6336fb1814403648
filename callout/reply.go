package callout

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// ErrBadReply reports an SMTP reply that a decision cannot carry.
var ErrBadReply = errors.New("callout: bad SMTP reply")

// Reply is an SMTP error reply a service asks the processor to give, for
// example {550, "5.1.1 no such user"}.
type Reply struct {
	// Code is the three-digit reply code, 4xx or 5xx (not 421).
	Code int
	// Text follows the code: the enhanced status code, if any, and the
	// human-readable text. Lines of a multi-line reply are separated by
	// "\n" or "\r\n".
	Text string
}

// ParseReply parses a reply as written in configuration or carried by the
// SMTP-Error parameter: "550 5.1.1 text", or several lines ("550-a\r\n550
// b"). The rules are ocpsmtp.ParseReply's.
func ParseReply(s string) (Reply, error) {
	r, err := ocpsmtp.ParseReply(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
	if err != nil {
		return Reply{}, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return Reply{Code: r.Code, Text: strings.Join(r.Lines, "\n")}, nil
}

// Validate reports whether the processor will accept r (ocpsmtp.ParseReply
// checks the code, the enhanced status code, control characters and
// lengths).
func (r Reply) Validate() error {
	if _, err := ocpsmtp.ParseReply(r.String()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return nil
}

// Temporary reports whether r is a 4xx reply.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// String formats r as the value of the SMTP-Error parameter: the SMTP reply
// without the CRLF after its last line, lines joined by CRLF with "-" after
// the code on every line but the last.
func (r Reply) String() string {
	lines := strings.Split(strings.ReplaceAll(r.Text, "\r\n", "\n"), "\n")
	code := fmt.Sprintf("%03d", r.Code)
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString(code)
		switch {
		case i < len(lines)-1:
			b.WriteByte('-')
		case l != "":
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return b.String()
}
