package callout

import (
	"errors"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// ErrBadReply reports an SMTP reply that a decision cannot carry.
var ErrBadReply = errors.New("callout: bad SMTP reply")

// Reply is an SMTP error reply a service asks the processor to give, for
// example {550, "5.1.1 no such user"}. It is the profile's one reply type,
// ocpsmtp.Reply (lines of a multi-line Text separated by "\r\n"); its
// Validate method is the rule the processor applies.
type Reply = ocpsmtp.Reply
