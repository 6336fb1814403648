package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// spoolPrefix names every spool file, so that stale ones can be found and
// removed at start.
const spoolPrefix = "opes-milter-spool-"

// Spool holds one stream of message bytes (an original body kept for the
// callout server, or an adapted body on its way back to the MTA). It keeps
// up to a memory threshold in RAM and moves to a 0600 temporary file beyond
// it, so a large message never sits in memory. A write error (disk full) is
// returned to the caller, which applies the failure policy: a spool is never
// silently truncated.
type Spool struct {
	dir       string
	threshold int
	mem       bytes.Buffer
	file      *os.File
	size      int64
	bufs      *bufPool // where the memory goes back on Close; may be nil
}

// Spool memory taken from a pool (newPooledSpool): a typical message's
// original data fits spoolBufMin; buffers grown beyond spoolBufMax are not
// kept.
const (
	spoolBufMin = 16 << 10
	spoolBufMax = 64 << 10
)

// NewSpool returns an empty spool that moves to a file in dir (os.TempDir
// when empty) once it holds more than threshold bytes.
func NewSpool(dir string, threshold int) *Spool {
	return &Spool{dir: dir, threshold: threshold}
}

// newPooledSpool is NewSpool with its memory taken from bufs and given
// back on Close; nothing may read the spool after Close.
func newPooledSpool(dir string, threshold int, bufs *bufPool) *Spool {
	return &Spool{dir: dir, threshold: threshold, bufs: bufs}
}

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.file == nil && s.mem.Len()+len(p) > s.threshold {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	if s.file != nil {
		n, err = s.file.Write(p)
	} else {
		if s.mem.Cap() == 0 {
			// Start at a typical message size instead of doubling up
			// from 64 bytes.
			if s.bufs != nil && len(p) <= spoolBufMin {
				s.mem = *bytes.NewBuffer(s.bufs.get())
			} else {
				s.mem.Grow(min(s.threshold, max(len(p), spoolBufMin)))
			}
		}
		n, err = s.mem.Write(p)
	}
	s.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("spool: %w", err)
	}
	return n, nil
}

func (s *Spool) toFile() error {
	f, err := os.CreateTemp(s.dir, spoolPrefix+"*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// CreateTemp already uses 0600; make it explicit for the reader of this code.
	if err := f.Chmod(0o600); err != nil {
		s.discard(f)
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write(s.mem.Bytes()); err != nil {
		s.discard(f)
		return fmt.Errorf("spool: %w", err)
	}
	s.mem = bytes.Buffer{}
	s.file = f
	return nil
}

func (s *Spool) discard(f *os.File) {
	name := f.Name()
	f.Close()
	os.Remove(name)
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
	return bytes.NewReader(s.mem.Bytes()[off : off+n]), nil
}

// ReaderAt returns random access to everything written so far.
func (s *Spool) ReaderAt() io.ReaderAt {
	if s.file != nil {
		return s.file
	}
	return bytes.NewReader(s.mem.Bytes())
}

// Reader returns a reader of everything written so far.
func (s *Spool) Reader() io.Reader {
	r, _ := s.Section(0, s.size)
	return r
}

// Close releases the memory and removes the file, if any.
func (s *Spool) Close() error {
	if s.bufs != nil {
		s.bufs.put(s.mem.Bytes())
	}
	s.mem = bytes.Buffer{}
	if s.file == nil {
		return nil
	}
	name := s.file.Name()
	err := errors.Join(s.file.Close(), os.Remove(name))
	s.file = nil
	return err
}

// RemoveStaleSpools deletes spool files a previous run left in dir (after a
// crash) and returns how many it removed.
func RemoveStaleSpools(dir string) (int, error) {
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
		if e.IsDir() || !strings.HasPrefix(e.Name(), spoolPrefix) {
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
