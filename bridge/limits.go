package bridge

import (
	"errors"
	"fmt"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// AnswerLimits bound, per message, what a callout server may ask of the MTA
// (docs/security.md C4). They are checked as the server's answers arrive,
// before anything is kept: beyond a limit the transaction is a protocol
// failure of that server (ErrAnswerLimit) and takes the chain's failure
// policy. A zero field is unlimited.
type AnswerLimits struct {
	// HeaderChanges bounds the Add-Header answers (each one a header
	// addition the MTA is asked for).
	HeaderChanges int
	// HeaderChangeBytes bounds the bytes of the Add-Header fields plus the
	// adapted header parts (ALLHEADERS, SINGLEHEADERS) the server sent.
	HeaderChangeBytes int64
	// AddedRecipients bounds the recipients the server adds.
	AddedRecipients int
	// AdaptedSize bounds the adapted data parts: the octets the server
	// sent and those of the original it referenced (DUY).
	AdaptedSize int64
}

// ErrAnswerLimit is wrapped by the failure of a transaction whose server
// asked for more than AnswerLimits allow.
var ErrAnswerLimit = errors.New("callout server answer beyond a limit")

// answerUsage counts, for one exchange, what its server asked for so far;
// guarded by the exchange's mu.
type answerUsage struct {
	lim         AnswerLimits
	headers     int
	headerBytes int64
	added       int
	adapted     int64
}

func limitFailure(format string, args ...any) *AdaptationError {
	return &AdaptationError{Class: FailProtocol, Err: fmt.Errorf("%w: %s", ErrAnswerLimit, fmt.Sprintf(format, args...))}
}

// addHeader counts one Add-Header field before it is kept.
func (u *answerUsage) addHeader(name, value string) *AdaptationError {
	u.headers++
	if max := u.lim.HeaderChanges; max > 0 && u.headers > max {
		return limitFailure("more than %d Add-Header answers (milter.max_header_changes)", max)
	}
	return u.headerData(int64(len(name) + 1 + len(value) + 2))
}

// headerData counts n octets of header changes.
func (u *answerUsage) headerData(n int64) *AdaptationError {
	u.headerBytes += n
	if max := u.lim.HeaderChangeBytes; max > 0 && u.headerBytes > max {
		return limitFailure("more than %d octets of header changes (milter.max_header_change_bytes)", max)
	}
	return nil
}

// addRecipient counts one added recipient before it is kept.
func (u *answerUsage) addRecipient() *AdaptationError {
	u.added++
	if max := u.lim.AddedRecipients; max > 0 && u.added > max {
		return limitFailure("more than %d added recipients (milter.max_added_recipients)", max)
	}
	return nil
}

// adaptedData counts n octets of an adapted data part before they are
// spooled: sent by the server, or (referenced) original octets it named by
// DUY. A reference to nothing counts as one octet, so references alone
// cannot grow without bound. Header octets the server sent count as
// header changes too.
func (u *answerUsage) adaptedData(part ocpsmtp.Part, n int64, referenced bool) *AdaptationError {
	n = max(n, 1)
	u.adapted += n
	if max := u.lim.AdaptedSize; max > 0 && u.adapted > max {
		return limitFailure("adapted message larger than %d octets (milter.max_adapted_size)", max)
	}
	if !referenced && (part == ocpsmtp.PartALLHEADERS || part == ocpsmtp.PartSINGLEHEADERS) {
		return u.headerData(n)
	}
	return nil
}
