package ocp

import (
	"context"
	"fmt"
)

// ServerTx is the callout server's view of one transaction. The handler
// receives the processor's original message with Recv and sends the
// adapted one with StartMessage, Send or SendDUY, and EndMessage. Its
// methods are safe for concurrent use.
type ServerTx struct {
	*txCore
	group *Group
}

// Xid returns the transaction identifier chosen by the processor.
func (t *ServerTx) Xid() int64 { return t.xid }

// Group returns the service group of the transaction.
func (t *ServerTx) Group() *Group { return t.group }

// Recv returns the processor's next message for this transaction: AMS,
// DUM, AME, DSS or TE. Original offsets are checked for gaps (a violation
// ends the transaction with TE 400 and Recv returns a *TxError). After the
// processor's TE (returned as a message) or after End, Recv returns io.EOF.
func (t *ServerTx) Recv(ctx context.Context) (*Message, error) { return t.recv(ctx) }

// StartMessage starts the adapted application message (AMS xid).
func (t *ServerTx) StartMessage(named ...Param) error { return t.startMessage(named) }

// Send sends one DUM of adapted data at the next adapted offset, which it
// returns. While the processor has paused the flow (DWP), Send blocks
// until DWM, ctx is done or the transaction ends. The payload is
// encoded before Send returns and not kept: the caller may reuse it.
func (t *ServerTx) Send(ctx context.Context, named []Param, payload []byte) (int64, error) {
	return t.send(ctx, named, payload)
}

// SendDUY tells the processor to use size octets of its preserved original
// data from orgOffset as the next adapted data (DUY). The range must have
// been announced with Kept and not declared disposable with DPI; otherwise
// SendDUY returns an error wrapping ErrState and sends nothing. The
// adapted offset advances by size.
func (t *ServerTx) SendDUY(orgOffset, size int64, named ...Param) error {
	m := &Message{Name: MsgDUY, Anon: []Value{t.xidAtom(), Num(orgOffset), Num(size)}, Named: named}
	_, err := t.sendData(context.Background(), m, size, true)
	return err
}

// Kept reports the original range the processor announced as kept so far.
func (t *ServerTx) Kept() (offset, size int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pres.keptOff, t.pres.keptEnd - t.pres.keptOff, t.pres.kept
}

// EndMessage ends the adapted application message (AME xid [result]).
func (t *ServerTx) EndMessage(res Result) error { return t.endMessage(res) }

// End ends the transaction (TE xid [result]); idempotent. Like Tx.End it
// does not block beyond ctx: a send of this transaction still waiting (a
// paused flow, a full output) is abandoned, the TE queued, and ctx's error
// returned.
func (t *ServerTx) End(ctx context.Context, res Result) error { return t.endTx(ctx, res) }

// EndWith ends the transaction like End, with named parameters on the TE
// (a profile's, such as the OCP/SMTP profile's Service-Failure).
func (t *ServerTx) EndWith(ctx context.Context, res Result, named ...Param) error {
	return t.endTxWith(ctx, res, named)
}

// SendDWSS asks the processor for permission to stop sending adapted data
// (DWSS); wait for its DSS (through Recv) before ending the adapted
// message with EndMessage(Result{Code: CodePartial}). When a DSS arrives
// while the adapted message is open, the server ends it with AME 206
// itself, and later sends fail with ErrState.
func (t *ServerTx) SendDWSS() error {
	t.mu.Lock()
	t.dwss = true
	t.mu.Unlock()
	return t.post(&Message{Name: MsgDWSS, Anon: []Value{t.xidAtom()}}, false)
}

// SendDWSR tells the processor that original data beyond the first
// orgSize octets is not needed (DWSR).
func (t *ServerTx) SendDWSR(orgSize int64) error {
	return t.post(&Message{Name: MsgDWSR, Anon: []Value{t.xidAtom(), Num(orgSize)}}, false)
}

// SendDPI declares [orgOffset, orgOffset+size) the only original data the
// server may still use with DUY (DPI). The area may only shrink.
func (t *ServerTx) SendDPI(orgOffset, size int64) error {
	t.mu.Lock()
	ok := t.pres.shrink(orgOffset, size)
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: DPI may not grow the reusable area", ErrState)
	}
	return t.post(&Message{Name: MsgDPI, Anon: []Value{t.xidAtom(), Num(orgOffset), Num(size)}}, false)
}

// Pause asks the processor to pause its original data from yourOffset on
// (DWP).
func (t *ServerTx) Pause(yourOffset int64) error { return t.pause(yourOffset) }

// Resume asks the processor for more data (DWM), with an optional
// suggested minimum chunk size (0 = any).
func (t *ServerTx) Resume(sizeRequest int64) error { return t.resume(sizeRequest) }

// Cork holds back this transaction's messages until Uncork, so that they
// join the connection's output together and leave in one write instead of
// one each, and the peer reads them at once. Use it around a burst of
// sends (the answers to one message, the AME and the TE). The connection's other transactions are not held back; at
// most 512 KiB of this one's are, beyond that they go out. A send that
// must wait for the peer (a paused flow) lets what is held go first.
// Corks nest: each Cork needs its Uncork.
func (t *ServerTx) Cork() { t.c.cork(&t.stage) }

// Uncork ends a Cork; the last one lets the output go.
func (t *ServerTx) Uncork() { t.c.uncork(&t.stage) }

// Done returns a channel closed when the transaction has ended.
func (t *ServerTx) Done() <-chan struct{} { return t.done }
