package bridge

import "sync"

// bufPool recycles byte buffers between mail transactions: buffers of at
// least size octets come out, and only those of at most max octets go
// back, so that a buffer grown for a large message is left to the garbage
// collector.
type bufPool struct {
	pool      sync.Pool
	size, max int
}

func newBufPool(size, max int) *bufPool { return &bufPool{size: size, max: max} }

// Get returns an empty buffer with room for at least size octets.
func (b *bufPool) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, b.size)
}

// Put takes buf back; the caller must not use it afterwards.
func (b *bufPool) Put(buf []byte) {
	if cap(buf) >= b.size && cap(buf) <= b.max {
		buf = buf[:0]
		b.pool.Put(&buf)
	}
}
