package milter

import (
	"bufio"
	"net"
	"sync"
)

// readBufs recycles the read side of finished MTA connections: Postfix
// opens one milter connection per SMTP session, so with one message per
// session every message would otherwise pay a fresh bufio.Reader and a
// frame buffer grown to the largest packet (the 64 KiB body chunk).
type readBufs struct {
	readers sync.Pool // *bufio.Reader
	frames  sync.Pool // *[]byte
}

// maxPooledFrame is the largest frame buffer kept for reuse: a body chunk
// (64 KiB) and its header; buffers grown for long header fields are
// dropped.
const maxPooledFrame = 64<<10 + 64

func (b *readBufs) reader(c net.Conn) *bufio.Reader {
	if b != nil {
		if r, ok := b.readers.Get().(*bufio.Reader); ok {
			r.Reset(c)
			return r
		}
	}
	return bufio.NewReaderSize(c, 4096)
}

func (b *readBufs) frame() []byte {
	if b != nil {
		if p, ok := b.frames.Get().(*[]byte); ok {
			return (*p)[:0]
		}
	}
	return nil
}

// release returns a connection's buffers; the caller must not use them
// afterwards.
func (b *readBufs) release(r *bufio.Reader, frame []byte) {
	if b == nil {
		return
	}
	if r != nil {
		r.Reset(nil)
		b.readers.Put(r)
	}
	if cap(frame) > 0 && cap(frame) <= maxPooledFrame {
		frame = frame[:0]
		b.frames.Put(&frame)
	}
}
