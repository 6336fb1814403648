package ocp

// Default limits used for the zero values of Limits fields.
const (
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxPayload     = 16 << 20
	DefaultMaxDepth       = 32
	DefaultMaxParams      = 1024
)

// MaxSize is the largest size, offset or uni value OCP allows (RFC 4037 §3.1,
// §10.2): 2147483647.
const MaxSize = 1<<31 - 1

// Limits bounds the resources a Decoder spends on one message. Exceeding
// a limit makes the message invalid with connection scope (RFC 4037 §5):
// the Decoder returns a *SyntaxError wrapping ErrLimit, before it allocates
// anything for the offending element. A zero field means its default.
type Limits struct {
	// MaxHeaderBytes bounds the octets of one message outside its payload,
	// quoted atoms included (default 64 KiB).
	MaxHeaderBytes int
	// MaxPayload bounds the payload of one message (default 16 MiB).
	MaxPayload int
	// MaxDepth bounds the nesting of lists and structures (default 32).
	MaxDepth int
	// MaxParams bounds the number of values and named parameters in one
	// message, nested ones included (default 1024).
	MaxParams int
}

// withDefaults returns l with zero (or negative) fields replaced by their
// defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultMaxPayload
	}
	if l.MaxPayload > MaxSize {
		l.MaxPayload = MaxSize
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxParams <= 0 {
		l.MaxParams = DefaultMaxParams
	}
	return l
}
