package ocp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

const (
	// highWater is the amount of encoded, unwritten data above which data
	// senders wait for the writer. It bounds the memory a slow peer can
	// pin per connection (the queue and the buffer being written, each at
	// most about twice this after append growth): 512 KiB keeps a
	// streamed 50 MiB body well inside a small heap and is still eight
	// 64 KiB DUMs ahead of the writer.
	highWater = 512 << 10
	// defaultWriteTimeout bounds one write to the transport.
	defaultWriteTimeout = 30 * time.Second
	// defaultDrainWait bounds how long the read loop waits for a
	// transaction's application to read its queue down (backpressure).
	defaultDrainWait = 30 * time.Second
	// lingerTimeout bounds how long a connection we ended with CE keeps
	// reading before it closes.
	lingerTimeout = 250 * time.Millisecond
)

// conn is the part of an OCP connection shared by both roles: a writer
// goroutine draining a buffer of encoded messages, negotiation-phase
// gating of outgoing messages, and the connection's end state. Reading and
// dispatching belong to the roles.
type conn struct {
	nc           net.Conn
	localKey     string // nc's local and remote addresses with "/", for txCore.Key
	remoteKey    string
	dec          *Decoder
	log          *slog.Logger
	writeTimeout time.Duration
	drainWait    time.Duration // see backpressure
	queueSoft    int           // queueSoftLimit, but for tests
	queueHard    int           // queueHardLimit, but for tests

	mu      sync.Mutex
	drained sync.Cond     // broadcast when out shrinks or the connection ends
	out     []byte        // encoded messages for the writer
	held    []byte        // non-phase messages held during a negotiation phase
	phase   bool          // a negotiation phase is active (RFC 4037 §6.1)
	closing bool          // a CE is queued: nothing more may be sent
	ending  *ConnError    // how the connection ends once the CE is written
	err     *ConnError    // set once when the connection has ended
	kick    chan struct{} // wakes the writer
	done    chan struct{} // closed when the connection has ended
	wdone   chan struct{} // closed when the writer has exited
	once    sync.Once
	stages  [][]byte // buffers of ended corks, reused by the next ones
}

// maxStageBuffers bounds conn.stages; maxStageReuse bounds the size of a
// buffer kept there.
const (
	maxStageBuffers = 4
	maxStageReuse   = 64 << 10
)

func newConn(nc net.Conn, lim Limits, log *slog.Logger) *conn {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &conn{
		nc:           nc,
		localKey:     addrKey(nc.LocalAddr()),
		remoteKey:    addrKey(nc.RemoteAddr()),
		dec:          NewDecoder(nc, lim),
		log:          log,
		writeTimeout: defaultWriteTimeout,
		drainWait:    defaultDrainWait,
		queueSoft:    queueSoftLimit,
		queueHard:    queueHardLimit,
		kick:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		wdone:        make(chan struct{}),
	}
	c.drained.L = &c.mu
	go c.writeLoop()
	return c
}

// phaseMessage reports whether a message may be sent during a negotiation
// phase (RFC 4037 §6.1).
func phaseMessage(name string) bool {
	switch name {
	case MsgNO, MsgNR, MsgAQ, MsgAA, MsgPQ, MsgPA, MsgPR, MsgCE, MsgCS:
		return true
	}
	return false
}

// send queues m. Data senders (wait) block while too much output is
// pending; control messages sent from the read loop never block. During a
// negotiation phase, messages other than phase messages are held back and
// released, in order, when the phase ends.
func (c *conn) send(m *Message, wait bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendLocked(m, wait)
}

func (c *conn) sendLocked(m *Message, wait bool) error {
	for wait && len(c.out)+len(c.held) > highWater && c.err == nil && !c.closing {
		c.drained.Wait()
	}
	if err := c.sendErrLocked(); err != nil {
		return err
	}
	if c.phase && !phaseMessage(m.Name) {
		c.held = AppendMessage(c.held, m)
		return nil
	}
	c.out = AppendMessage(c.out, m)
	c.wakeLocked()
	return nil
}

func (c *conn) sendErrLocked() error {
	if c.err != nil {
		return c.err
	}
	if c.closing {
		return ErrClosed
	}
	return nil
}

func (c *conn) wakeLocked() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// stage holds back the messages of one corked transaction (Tx.Cork) so
// that they join the connection's output together; guarded by conn.mu.
type stage struct {
	corked int    // Cork calls not yet matched by Uncork
	buf    []byte // encoded messages held back
}

// sendStaged is send for a transaction's own messages: while st is corked
// they are held in st (at most highWater octets; beyond that they join
// the output), and the connection's other transactions go on meanwhile.
func (c *conn) sendStaged(st *stage, m *Message, wait bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.corked == 0 {
		return c.sendLocked(m, wait)
	}
	if err := c.sendErrLocked(); err != nil {
		return err
	}
	if st.buf == nil {
		if n := len(c.stages); n > 0 {
			st.buf, c.stages = c.stages[n-1], c.stages[:n-1]
		}
	}
	st.buf = AppendMessage(st.buf, m)
	if len(st.buf) > highWater {
		c.releaseStageLocked(st, wait)
	}
	return nil
}

// cork starts holding back st's messages. Corks nest.
func (c *conn) cork(st *stage) {
	c.mu.Lock()
	st.corked++
	c.mu.Unlock()
}

// uncork ends one cork; the last one lets st's messages go, in one piece.
func (c *conn) uncork(st *stage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.corked == 0 {
		return
	}
	st.corked--
	if st.corked == 0 {
		c.releaseStageLocked(st, false)
		if st.buf != nil && cap(st.buf) <= maxStageReuse && len(c.stages) < maxStageBuffers {
			c.stages = append(c.stages, st.buf[:0])
		}
		st.buf = nil
	}
}

// flushStage lets what st holds go now, without ending the cork: a
// transaction about to wait for its peer must not hold back what the peer
// needs first.
func (c *conn) flushStage(st *stage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseStageLocked(st, false)
}

// releaseStageLocked moves what st holds to the output (or to the
// messages held during a negotiation phase); data senders (wait) first
// wait for output space as send does.
func (c *conn) releaseStageLocked(st *stage, wait bool) {
	if len(st.buf) == 0 {
		return
	}
	for wait && len(c.out)+len(c.held) > highWater && c.err == nil && !c.closing {
		c.drained.Wait()
	}
	if c.err == nil && !c.closing {
		if c.phase {
			c.held = append(c.held, st.buf...)
		} else {
			c.out = append(c.out, st.buf...)
			c.wakeLocked()
		}
	}
	st.buf = st.buf[:0]
}

// setPhase starts or ends a negotiation phase. Ending it releases the
// messages held back meanwhile.
func (c *conn) setPhase(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setPhaseLocked(on)
}

func (c *conn) setPhaseLocked(on bool) {
	c.phase = on
	if !on && len(c.held) > 0 {
		c.out = append(c.out, c.held...)
		c.held = c.held[:0]
		c.wakeLocked()
	}
}

// inPhase reports whether a negotiation phase is active.
func (c *conn) inPhase() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase
}

func (c *conn) writeLoop() {
	defer close(c.wdone)
	var spare []byte
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		for {
			c.mu.Lock()
			buf := c.out
			if len(buf) == 0 {
				closing := c.closing
				c.mu.Unlock()
				if closing {
					// Half-close so the CE is delivered; fail closes the
					// rest after a short linger.
					if cw, ok := c.nc.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
						c.nc.Close()
					}
					return
				}
				break
			}
			c.out = spare[:0]
			c.drained.Broadcast()
			c.mu.Unlock()
			c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
			if _, err := c.nc.Write(buf); err != nil {
				// The transport failed under our write: the peer reset or
				// closed it (a crash, a restart) or stopped reading until
				// the write deadline. Either way the peer failed, not us:
				// who failed, not which system call saw it, decides.
				c.fail(&ConnError{Result: Failure("write failed"), Remote: true, Err: err})
				return
			}
			spare = buf
		}
	}
}

// terminate ends the connection from our side: it queues CE with res,
// lets the writer flush it (bounded by the write timeout), closes the
// transport and records the end. It returns once the connection has ended.
func (c *conn) terminate(res Result, cause error) {
	c.terminateCtx(context.Background(), res, cause)
}

// terminateCtx is terminate that stops waiting for the writer when ctx
// ends (the transport is then closed at once).
func (c *conn) terminateCtx(ctx context.Context, res Result, cause error) {
	c.mu.Lock()
	if c.err == nil && !c.closing {
		ce := &Message{Name: MsgCE}
		if res.Code != 0 {
			ce.Anon = []Value{res.Value()}
		}
		c.out = AppendMessage(c.out, ce)
		c.held = nil
		c.closing = true
		c.ending = &ConnError{Result: res, Err: cause}
		c.wakeLocked()
		c.drained.Broadcast()
	}
	ending := c.ending
	c.mu.Unlock()
	t := time.NewTimer(c.writeTimeout)
	defer t.Stop()
	select {
	case <-c.wdone:
	case <-c.done:
	case <-t.C:
	case <-ctx.Done():
	}
	if ending == nil {
		ending = &ConnError{Result: res, Err: cause}
	}
	c.fail(ending)
}

// fail records how the connection ended, closes the transport and wakes
// everything waiting on it. Only the first call has an effect.
func (c *conn) fail(e *ConnError) {
	c.once.Do(func() {
		c.mu.Lock()
		if c.ending != nil && e.Remote {
			// We sent CE first; the transport closing afterwards is ours.
			e = c.ending
		}
		c.err = e
		c.drained.Broadcast()
		sentCE := c.ending != nil
		c.mu.Unlock()
		close(c.done)
		if sentCE {
			// Read what the peer still sends for a moment: closing with
			// unread input would reset the connection and could destroy
			// our CE before the peer reads it.
			c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
			io.CopyN(io.Discard, c.nc, 1<<20)
		}
		c.nc.Close()
	})
}

// Err returns how the connection ended, or nil while it is open.
func (c *conn) connErr() *ConnError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// dispatchEnd ends the connection after a dispatch returned end for m: a
// CE from the peer closes it, a message we refuse is answered with CE.
// peer names the other side in the log ("server", "processor").
func (c *conn) dispatchEnd(end *ConnError, m *Message, peer string) {
	if end.Remote {
		c.fail(end)
		return
	}
	c.log.Warn("ocp: invalid message from "+peer, "msg", m.Name, "reason", end.Result.Reason)
	c.terminate(end.Result, nil)
}

// abortTxs fails every transaction of txs (guarded by mu) with the way
// the connection c ended.
func abortTxs[T interface{ abort(*ConnError) }](c *conn, mu *sync.Mutex, txs map[int64]T) {
	err := c.connErr()
	if err == nil {
		err = &ConnError{Result: Failure("connection closed")}
	}
	mu.Lock()
	open := make([]T, 0, len(txs))
	for _, tx := range txs {
		open = append(open, tx)
	}
	mu.Unlock()
	for _, tx := range open {
		tx.abort(err)
	}
}

// readErr turns a Decode error into the way the connection ends: a
// *SyntaxError is answered with CE 400 (RFC 4037 §5), and so is a read
// deadline expiring inside a message; anything else is a transport
// failure, which OCP treats as CE 400 from the peer.
func (c *conn) readErr(err error) {
	var se *SyntaxError
	if errors.As(err, &se) {
		c.log.Warn("ocp: invalid input from peer", "err", err)
		c.terminate(Failure(se.Msg), err)
		return
	}
	if isTimeout(err) {
		c.terminate(Failure("read timeout"), err)
		return
	}
	c.fail(&ConnError{Result: Failure("transport closed"), Remote: true, Err: err})
}

// isTimeout reports whether err is a read deadline expiring.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
