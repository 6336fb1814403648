package callout

import (
	"fmt"
	"io"
	"os"

	"github.com/emersion/go-message/textproto"
)

// Message is the mail data of one transaction (the RAWDATA part: header
// section, empty line, body), kept in memory or in an unlinked temporary
// file. Its bytes never change; edits produce a new Message (see Splice).
// A Message is not safe for concurrent use.
type Message struct {
	ra   io.ReaderAt
	size int64
	file *os.File
	opts SpoolOptions

	root    *Section
	rootErr error
}

// NewMessage returns a message holding b. The message keeps b; the caller
// must not modify it afterwards.
func NewMessage(b []byte) *Message {
	return &Message{ra: bytesReaderAt(b), size: int64(len(b))}
}

// Size returns the length of the message in bytes.
func (m *Message) Size() int64 { return m.size }

// ReadAt implements io.ReaderAt.
func (m *Message) ReadAt(p []byte, off int64) (int, error) { return m.ra.ReadAt(p, off) }

// NewReader returns a reader of the whole message, independent of other
// readers.
func (m *Message) NewReader() io.Reader { return io.NewSectionReader(m.ra, 0, m.size) }

// WriteTo implements io.WriterTo: a message in memory is written in one
// Write (a connection sends it without a copy), one in a file in chunks.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	if b, ok := m.ra.(bytesReaderAt); ok {
		n, err := w.Write(b)
		return int64(n), err
	}
	return io.Copy(w, io.NewSectionReader(m.ra, 0, m.size))
}

// Range returns a reader of the bytes [off, end).
func (m *Message) Range(off, end int64) io.Reader {
	return io.NewSectionReader(m.ra, off, end-off)
}

// Bytes returns the bytes [off, end) in memory. Callers bound end-off.
func (m *Message) Bytes(off, end int64) ([]byte, error) {
	if off < 0 || end > m.size || off > end {
		return nil, fmt.Errorf("callout: range %d-%d outside message of %d bytes", off, end, m.size)
	}
	b := make([]byte, end-off)
	if _, err := m.ra.ReadAt(b, off); err != nil && !(err == io.EOF && len(b) == 0) {
		return nil, fmt.Errorf("callout: read message: %w", err)
	}
	return b, nil
}

// SpoolOptions returns the options new messages derived from m use.
func (m *Message) SpoolOptions() SpoolOptions { return m.opts }

// NewSpool returns a spool with the same options as m, for building a
// replacement message.
func (m *Message) NewSpool() *Spool { return NewSpool(m.opts) }

// Root returns the MIME structure of the message, parsed on first use.
// Malformed MIME is not an error: the problems are recorded on the
// sections (Section.Problems) and parsing goes on as far as it can.
func (m *Message) Root() (*Section, error) {
	if m.root == nil && m.rootErr == nil {
		m.root, m.rootErr = parseMessage(m)
	}
	return m.root, m.rootErr
}

// Header returns the top-level header section.
func (m *Message) Header() (textproto.Header, error) {
	r, err := m.Root()
	if err != nil {
		return textproto.Header{}, err
	}
	return r.Header, nil
}

// Walk calls fn for every section, depth first, parents before children.
// It stops at the first error fn returns and returns it.
func (m *Message) Walk(fn func(s *Section) error) error {
	r, err := m.Root()
	if err != nil {
		return err
	}
	return r.Walk(fn)
}

// Close releases the message's storage. It is safe to call more than once.
func (m *Message) Close() error {
	if m == nil || m.file == nil {
		return nil
	}
	f := m.file
	m.file = nil
	return f.Close()
}
