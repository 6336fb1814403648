package milter

import (
	"context"
	"sync"
)

// tracker counts what a Server has running: accepted connections (until
// closed) and adapters (from negotiation until Cleanup, i.e. while a bridge
// call may run). go-milter's own Close does not wait for either.
type tracker struct {
	mu     sync.Mutex
	conns  map[*frameConn]struct{}
	n      int           // len(conns) + live adapters
	idle   chan struct{} // closed whenever n == 0
	closed bool          // no new connections
}

func (t *tracker) init() {
	t.conns = make(map[*frameConn]struct{})
	t.idle = make(chan struct{})
	close(t.idle)
}

func (t *tracker) incLocked() {
	t.n++
	if t.n == 1 {
		t.idle = make(chan struct{})
	}
}

func (t *tracker) decLocked() {
	t.n--
	if t.n == 0 {
		close(t.idle)
	}
}

// add registers c and makes its Close unregister it; false once closed.
func (t *tracker) add(c *frameConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	t.incLocked()
	c.onClose = func() { t.remove(c) }
	return true
}

// count returns the connections open.
func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

func (t *tracker) remove(c *frameConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; ok {
		delete(t.conns, c)
		t.decLocked()
	}
}

func (t *tracker) adapterStart() {
	t.mu.Lock()
	t.incLocked()
	t.mu.Unlock()
}

func (t *tracker) adapterEnd() {
	t.mu.Lock()
	t.decLocked()
	t.mu.Unlock()
}

// close refuses further connections.
func (t *tracker) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

func (t *tracker) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// closeConns closes every tracked connection.
func (t *tracker) closeConns() {
	t.mu.Lock()
	cs := make([]*frameConn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// wait returns when nothing is tracked, or ctx.Err().
func (t *tracker) wait(ctx context.Context) error {
	for {
		t.mu.Lock()
		n, idle := t.n, t.idle
		t.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
