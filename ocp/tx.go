package ocp

import (
	"context"
)

// Tx is one OCP transaction on the processor side (RFC 4037 §11.5-11.17):
// it carries one original application message to the server and the
// adapted one back. Its methods are safe for concurrent use, although the
// data methods are meant to be called from one goroutine in order.
type Tx struct {
	*txCore
	cl *Client
}

// Xid returns the transaction identifier.
func (t *Tx) Xid() int64 { return t.xid }

// StartMessage starts the original application message (AMS xid) with the
// given named parameters.
func (t *Tx) StartMessage(named ...Param) error { return t.startMessage(named) }

// Send sends one DUM with the given named parameters and payload at the
// next original offset, which it returns. While the server has paused the
// flow (DWP), Send blocks until DWM, ctx is done or the transaction ends.
// The payload is encoded before Send returns and not kept: the caller may
// reuse it.
// A Kept parameter (see KeptParam) is recorded so that the server's DUY can
// be checked.
func (t *Tx) Send(ctx context.Context, named []Param, payload []byte) (int64, error) {
	return t.send(ctx, named, payload)
}

// EndMessage ends the original application message (AME xid [result]).
// Use Result{Code: CodePartial} after the server's DWSR.
func (t *Tx) EndMessage(res Result) error { return t.endMessage(res) }

// Recv returns the next message of the server for this transaction: AMS,
// DUM, DUY, DPI, DWSS, DWSR, AME or TE. Adapted offsets are checked for
// gaps and DUY against the data announced as kept; a violation ends the
// transaction with TE 400 and Recv returns a *TxError. After the server's
// TE (returned as a message) or after End, Recv returns io.EOF; after a
// failed transaction a *TxError, after a lost connection a *ConnError.
func (t *Tx) Recv(ctx context.Context) (*Message, error) { return t.recv(ctx) }

// End ends the transaction (TE xid [result]): res is 200 (or zero) only
// for an answer the processor applies, 400 otherwise (RFC 4037 §11.6). It
// is idempotent and sends nothing if the transaction already ended. It
// does not block beyond ctx: a send of this transaction still waiting (a
// paused flow, a full output) is abandoned and the TE queued when ctx
// ends, and ctx's error returned.
func (t *Tx) End(ctx context.Context, res Result) error { return t.endTx(ctx, res) }

// SendDSS allows the server to stop sending adapted data (DSS, RFC 4037
// §11.14), usually after its DWSS. The caller must then be able to rebuild
// the message from original data after the server's AME 206.
func (t *Tx) SendDSS() error {
	t.mu.Lock()
	t.dss = true
	t.mu.Unlock()
	return t.post(&Message{Name: MsgDSS, Anon: []Value{t.xidAtom()}}, false)
}

// Pause asks the server to pause its adapted data from adapted offset
// yourOffset on (DWP).
func (t *Tx) Pause(yourOffset int64) error { return t.pause(yourOffset) }

// Resume asks the server for more data (DWM), with an optional suggested
// minimum chunk size (0 = any).
func (t *Tx) Resume(sizeRequest int64) error { return t.resume(sizeRequest) }

// Cork holds back this transaction's messages until Uncork, so that they
// join the connection's output together and leave in one write instead of
// one each, and the peer reads them at once. Use it around a burst of
// sends (the last DUMs and the AME). The connection's other transactions are not held back; at
// most 512 KiB of this one's are, beyond that they go out. A send that
// must wait for the peer (a paused flow) lets what is held go first.
// Corks nest: each Cork needs its Uncork.
func (t *Tx) Cork() { t.c.cork(&t.stage) }

// Uncork ends a Cork; the last one lets the output go.
func (t *Tx) Uncork() { t.c.uncork(&t.stage) }

// Done returns a channel closed when the transaction has ended.
func (t *Tx) Done() <-chan struct{} { return t.done }
