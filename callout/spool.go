package callout

import (
	"errors"
	"fmt"
	"io"
	"os"
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
// unlinked temporary file, so nothing is left on disk if the process dies.
// It is not safe for concurrent use.
type Spool struct {
	opts SpoolOptions
	buf  []byte
	f    *os.File
	n    int64
	done bool
}

// NewSpool returns an empty spool.
func NewSpool(opts SpoolOptions) *Spool { return &Spool{opts: opts} }

// Len returns the number of bytes written so far.
func (s *Spool) Len() int64 { return s.n }

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.done {
		return 0, ErrSpoolDone
	}
	if s.f == nil && s.opts.threshold() >= 0 && int64(len(s.buf)+len(p)) > s.opts.threshold() {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	if s.f != nil {
		n, err := s.f.Write(p)
		s.n += int64(n)
		if err != nil {
			return n, fmt.Errorf("callout: spool: %w", err)
		}
		return n, nil
	}
	s.buf = append(s.buf, p...)
	s.n += int64(len(p))
	return len(p), nil
}

// WriteString appends str.
func (s *Spool) WriteString(str string) (int, error) { return s.Write([]byte(str)) }

func (s *Spool) toFile() error {
	f, err := os.CreateTemp(s.opts.Dir, "opes-callout-*.eml")
	if err != nil {
		return fmt.Errorf("callout: spool: %w", err)
	}
	// Unlink at once: the open descriptor keeps the data, and nothing
	// lingers on disk after a crash.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return fmt.Errorf("callout: spool: %w", err)
	}
	if _, err := f.Write(s.buf); err != nil {
		f.Close()
		return fmt.Errorf("callout: spool: %w", err)
	}
	s.f, s.buf = f, nil
	return nil
}

// Message ends writing and returns the collected message. The spool must
// not be used afterwards.
func (s *Spool) Message() (*Message, error) {
	if s.done {
		return nil, ErrSpoolDone
	}
	s.done = true
	if f := s.f; f != nil {
		s.f = nil
		return &Message{ra: f, size: s.n, file: f, opts: s.opts}, nil
	}
	b := s.buf
	s.buf = nil
	return &Message{ra: bytesReaderAt(b), size: s.n, opts: s.opts}, nil
}

// Discard drops the collected data. It does nothing once Message has
// been called.
func (s *Spool) Discard() {
	s.done = true
	s.buf = nil
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
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

// peek returns up to n bytes from the start of the spooled data without
// finishing the spool.
func (s *Spool) Peek(n int) ([]byte, error) {
	if s.f == nil {
		return s.buf[:min(n, len(s.buf))], nil
	}
	b := make([]byte, min(int64(n), s.n))
	_, err := s.f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}
