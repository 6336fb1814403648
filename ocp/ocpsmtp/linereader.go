package ocpsmtp

import (
	"bufio"
	"errors"
	"io"
)

// maxLineKept bounds how much of one line lineReader returns; longer lines
// are measured in full but returned truncated.
const maxLineKept = 64 << 10

// lineReader reads lines of a byte range and reports their offsets.
type lineReader struct {
	br  *bufio.Reader
	off int64 // offset of the next line
	buf []byte
}

func newLineReader(ra io.ReaderAt, off, end int64) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(io.NewSectionReader(ra, off, end-off), 4<<10), off: off}
}

// line is one line of a byte range.
type line struct {
	b     []byte // the line with its line break, truncated to maxLineKept
	start int64  // offset of the first byte
	n     int64  // full length including the line break
	eol   int64  // length of the line break: 0 (last line), 1 or 2
}

// end returns the offset after the line.
func (l line) end() int64 { return l.start + l.n }

// content returns the line without its line break (possibly truncated).
func (l line) content() []byte { return trimEOL(l.b) }

// next returns the next line. The returned bytes are valid until the next
// call. It returns io.EOF when no bytes are left.
func (lr *lineReader) next() (line, error) {
	l := line{start: lr.off}
	lr.buf = lr.buf[:0]
	var last byte
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if len(chunk) > 0 {
			if chunk[len(chunk)-1] == '\n' {
				l.eol = 1
				if len(chunk) > 1 && chunk[len(chunk)-2] == '\r' || len(chunk) == 1 && last == '\r' {
					l.eol = 2
				}
			}
			last = chunk[len(chunk)-1]
		}
		l.n += int64(len(chunk))
		if room := maxLineKept - len(lr.buf); room > 0 {
			lr.buf = append(lr.buf, chunk[:min(room, len(chunk))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		lr.off += l.n
		l.b = lr.buf
		if err != nil && (l.n == 0 || !errors.Is(err, io.EOF)) {
			return l, err
		}
		return l, nil
	}
}

// trimEOL returns line without its final "\n" or "\r\n".
func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	return line
}
