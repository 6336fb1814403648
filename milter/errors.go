package milter

import (
	"errors"
	"fmt"
)

// Sentinel errors of the package. Test with errors.Is.
var (
	// ErrBadFrame is wrapped by every *FrameError: the MTA side sent a
	// milter packet that is malformed or too large. Only that connection
	// is closed.
	ErrBadFrame = errors.New("milter: bad frame")
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("milter: server closed")
	// ErrNotNegotiated is returned by a Modifier method whose action the
	// MTA did not grant during negotiation (or whose protocol version is
	// too low).
	ErrNotNegotiated = errors.New("milter: action not negotiated with the MTA")
	// ErrModifierDone is returned by a Modifier used after its
	// end-of-message callback returned.
	ErrModifierDone = errors.New("milter: modifier used after end of message")
	// ErrBodyReplaced is returned by a second ReplaceBody for one message.
	ErrBodyReplaced = errors.New("milter: body already replaced")
	// ErrBadSocket is wrapped by Listen errors about the
	// socket specification.
	ErrBadSocket = errors.New("milter: bad socket")
	// ErrSocketInUse is returned by Listen when a unix socket path is
	// served by a live process.
	ErrSocketInUse = errors.New("milter: socket in use")
)

// FrameError describes a rejected milter packet.
type FrameError struct {
	Cmd    byte   // command byte, 0 if the header itself was rejected
	Length uint32 // announced packet length (command byte included)
	Reason string
}

// Error implements error.
func (e *FrameError) Error() string {
	if e.Cmd == 0 {
		return fmt.Sprintf("milter: bad frame (len %d): %s", e.Length, e.Reason)
	}
	return fmt.Sprintf("milter: bad frame %q (len %d): %s", e.Cmd, e.Length, e.Reason)
}

// Is makes errors.Is(err, ErrBadFrame) true.
func (e *FrameError) Is(target error) bool { return target == ErrBadFrame }
