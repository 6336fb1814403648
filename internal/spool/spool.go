// Package spool holds one stream of message bytes, in memory up to a
// threshold and in an unlinked temporary file beyond it, so that a large
// message never sits in memory and nothing lingers on disk after a crash.
// It is the one spool of the project: the processor (package bridge) keeps
// original and adapted data in it, the callout server (package callout)
// the messages it receives and builds. Standard library only.
package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Buffers lends memory to spools and takes it back when they close.
type Buffers interface {
	// Get returns an empty buffer.
	Get() []byte
	// Put takes a buffer back; the caller must not use it afterwards.
	Put([]byte)
}

// Options control a Spool.
type Options struct {
	// Dir is the directory of the temporary file; "" means os.TempDir().
	Dir string
	// Threshold is how many bytes stay in memory; beyond it the data moves
	// to the file. A negative value keeps everything in memory.
	Threshold int64
	// Prefix starts the temporary file's name ("opes-milter-spool-").
	Prefix string
	// Buffers, when set, provides the memory of a spool that starts with
	// a small write, and takes it back on Close.
	Buffers Buffers
}

// growMin is the largest first write for which a spool takes lent memory
// (Options.Buffers) instead of its own.
const growMin = 16 << 10

// Spool is one stream of bytes. A write error (disk full) is returned to
// the caller: a spool is never silently truncated. It is not safe for
// concurrent use.
type Spool struct {
	opts Options
	mem  []byte
	file *os.File
	size int64
}

// New returns an empty spool.
func New(opts Options) *Spool { return &Spool{opts: opts} }

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.file == nil && s.opts.Threshold >= 0 && int64(len(s.mem)+len(p)) > s.opts.Threshold {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	if s.file != nil {
		n, err := s.file.Write(p)
		s.size += int64(n)
		if err != nil {
			return n, fmt.Errorf("spool: %w", err)
		}
		return n, nil
	}
	if cap(s.mem) == 0 && s.opts.Buffers != nil && len(p) <= growMin {
		s.mem = s.opts.Buffers.Get()[:0]
	}
	// Without lent memory, append sizes the buffer: a small message takes
	// no more than it needs (a 16 KiB start cost every 10 KiB message 6 KiB).
	s.mem = append(s.mem, p...)
	s.size += int64(len(p))
	return len(p), nil
}

// WriteString appends str.
func (s *Spool) WriteString(str string) (int, error) { return s.Write([]byte(str)) }

// readFromMin is the least free memory ReadFrom reads into.
const readFromMin = 4 << 10

// ReadFrom appends what r yields until io.EOF. In memory it reads straight
// into the spool's buffer (io.Copy would first read into a 32 KiB buffer
// of its own per call); beyond the threshold it moves to the file as Write
// does.
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	if sz, ok := r.(interface{ Size() int64 }); ok && s.file == nil {
		// A reader that knows its size (io.SectionReader, bytes.Reader)
		// gets room for all of it, up to the threshold, at once.
		want := sz.Size() + 1 // the extra byte lets the final Read see EOF
		if s.opts.Threshold >= 0 {
			want = min(want, s.opts.Threshold+1-int64(len(s.mem)))
		}
		if want > int64(cap(s.mem)-len(s.mem)) && want > 0 {
			if cap(s.mem) == 0 && s.opts.Buffers != nil && want <= growMin {
				s.mem = s.opts.Buffers.Get()[:0]
			}
			s.mem = slices.Grow(s.mem, int(want))
		}
	}
	for s.file == nil {
		if cap(s.mem) == len(s.mem) {
			// Full (or empty): grow. Room that is left, even a little,
			// is read into first: a reader sized above ends with a Read
			// of its last byte of room that returns io.EOF.
			if cap(s.mem) == 0 && s.opts.Buffers != nil {
				s.mem = s.opts.Buffers.Get()[:0]
			}
			if cap(s.mem) == len(s.mem) {
				s.mem = slices.Grow(s.mem, max(readFromMin, len(s.mem)))
			}
		}
		free := s.mem[len(s.mem):cap(s.mem)]
		if s.opts.Threshold >= 0 {
			// Read at most one byte beyond the threshold, which then
			// moves everything to the file.
			free = free[:min(int64(len(free)), max(s.opts.Threshold+1-int64(len(s.mem)), 1))]
		}
		n, err := r.Read(free)
		s.mem = s.mem[:len(s.mem)+n]
		s.size += int64(n)
		total += int64(n)
		if s.opts.Threshold >= 0 && int64(len(s.mem)) > s.opts.Threshold {
			if ferr := s.toFile(); ferr != nil {
				return total, ferr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("spool: %w", err)
		}
	}
	n, err := io.Copy(s.file, r)
	s.size += n
	total += n
	if err != nil {
		return total, fmt.Errorf("spool: %w", err)
	}
	return total, nil
}

// toFile moves the data to a new temporary file (mode 0600), unlinked at
// once: the open descriptor keeps the data.
func (s *Spool) toFile() error {
	f, err := os.CreateTemp(s.opts.Dir, s.opts.Prefix+"*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write(s.mem); err != nil {
		f.Close()
		return fmt.Errorf("spool: %w", err)
	}
	s.release()
	s.file = f
	return nil
}

// release gives the memory back.
func (s *Spool) release() {
	if s.opts.Buffers != nil && s.mem != nil {
		s.opts.Buffers.Put(s.mem)
	}
	s.mem = nil
}

// Size returns the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// OnDisk reports whether the spool moved to a file.
func (s *Spool) OnDisk() bool { return s.file != nil }

// Section returns a reader of the bytes [off, off+n).
func (s *Spool) Section(off, n int64) (io.Reader, error) {
	if off < 0 || n < 0 || off+n > s.size {
		return nil, fmt.Errorf("spool: range %d+%d outside %d bytes", off, n, s.size)
	}
	if s.file != nil {
		return io.NewSectionReader(s.file, off, n), nil
	}
	return bytes.NewReader(s.mem[off : off+n]), nil
}

// ReaderAt returns random access to everything written so far.
func (s *Spool) ReaderAt() io.ReaderAt {
	if s.file != nil {
		return s.file
	}
	return bytes.NewReader(s.mem)
}

// Reader returns a reader of everything written so far.
func (s *Spool) Reader() io.Reader {
	r, _ := s.Section(0, s.size)
	return r
}

// Peek returns up to n bytes from the start.
func (s *Spool) Peek(n int) ([]byte, error) {
	if s.file == nil {
		return s.mem[:min(n, len(s.mem))], nil
	}
	b := make([]byte, min(int64(n), s.size))
	if _, err := s.file.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return b, nil
}

// Detach hands the data over to the caller and leaves the spool empty:
// either mem (the bytes, when in memory) or file (the unlinked file, which
// the caller closes), and the size. Memory from Options.Buffers is not
// given back.
func (s *Spool) Detach() (mem []byte, file *os.File, size int64) {
	mem, file, size = s.mem, s.file, s.size
	s.mem, s.file, s.size = nil, nil, 0
	return mem, file, size
}

// Close releases the memory and the file; nothing may read the spool
// afterwards.
func (s *Spool) Close() error {
	s.release()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// RemoveStale deletes the files whose names start with prefix in dir
// (os.TempDir() when ""): spool files of an older version that named them
// until they closed. It returns how many it removed.
func RemoveStale(dir, prefix string) (int, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
