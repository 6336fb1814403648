package callout

import (
	"errors"
	"fmt"
	"io"

	"github.com/opes-milter/opes-milter/internal/spool"
)

// DefaultSpoolThreshold is the size above which a spool moves a message
// from memory to a temporary file when SpoolOptions.Threshold is zero.
const DefaultSpoolThreshold = 1 << 20

// SpoolOptions controls where message data is kept. The zero value keeps up
// to DefaultSpoolThreshold bytes in memory and the rest in os.TempDir().
type SpoolOptions struct {
	// Threshold is the size in bytes above which data goes to a temporary
	// file. Zero means DefaultSpoolThreshold; a negative value keeps
	// everything in memory.
	Threshold int64
	// Dir is the directory for temporary files; "" means os.TempDir().
	Dir string
}

func (o SpoolOptions) threshold() int64 {
	if o.Threshold == 0 {
		return DefaultSpoolThreshold
	}
	return o.Threshold
}

// ErrSpoolDone reports a write to a spool that has already produced its
// message or been discarded.
var ErrSpoolDone = errors.New("callout: spool already finished")

// Spool collects one message: in memory up to the threshold, then in an
// unlinked temporary file, so nothing is left on disk if the process dies
// (the project's one spool, internal/spool, with the state of a message
// being built). It is not safe for concurrent use.
type Spool struct {
	opts SpoolOptions
	s    *spool.Spool
	done bool
}

// NewSpool returns an empty spool.
func NewSpool(opts SpoolOptions) *Spool {
	return &Spool{opts: opts, s: spool.New(spool.Options{Dir: opts.Dir, Threshold: opts.threshold(), Prefix: "opes-callout-"})}
}

// Len returns the number of bytes written so far.
func (s *Spool) Len() int64 { return s.s.Size() }

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.done {
		return 0, ErrSpoolDone
	}
	n, err := s.s.Write(p)
	if err != nil {
		return n, fmt.Errorf("callout: %w", err)
	}
	return n, nil
}

// WriteString appends str.
func (s *Spool) WriteString(str string) (int, error) { return s.Write([]byte(str)) }

// ReadFrom appends what r yields until io.EOF (io.Copy uses it): in
// memory without an intermediate copy buffer.
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	if s.done {
		return 0, ErrSpoolDone
	}
	n, err := s.s.ReadFrom(r)
	if err != nil {
		return n, fmt.Errorf("callout: %w", err)
	}
	return n, nil
}

// Message ends writing and returns the collected message. The spool must
// not be used afterwards.
func (s *Spool) Message() (*Message, error) {
	if s.done {
		return nil, ErrSpoolDone
	}
	s.done = true
	mem, f, n := s.s.Detach()
	if f != nil {
		return &Message{ra: f, size: n, file: f, opts: s.opts}, nil
	}
	return &Message{ra: bytesReaderAt(mem), size: n, opts: s.opts}, nil
}

// Discard drops the collected data. It does nothing once Message has
// been called.
func (s *Spool) Discard() {
	s.done = true
	s.s.Close()
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("callout: negative offset")
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Peek returns up to n bytes from the start of the spooled data without
// finishing the spool.
func (s *Spool) Peek(n int) ([]byte, error) { return s.s.Peek(n) }
