package bridge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file holds the exchange (one OCP transaction), its lock, how the
// transaction ends (decideEnd, sendEnd) and the original parts it sends
// and keeps for DUY.

// exchange drives one OCP transaction: the OCP side of one SMTP mail
// transaction. The session goroutine sends the original parts in SMTP
// order; a receiver goroutine reads the callout server's answers as they
// come (adapted data is spooled as it arrives, never queued in memory) and
// wakes the session when an answer it waits for is there.
type exchange struct {
	tx   *ocp.Tx
	prof ocpsmtp.Profile // negotiated for the service group
	log  *slog.Logger

	spoolDir  string
	spoolMem  int
	spoolBufs *bufPool // memory of the spools, recycled on close

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change

	// Original data, offsets from 0: the pre-DATA parts in memory (small,
	// always kept) and, when a data part is adaptive, the kept data parts
	// in a spool starting at original offset dataStart.
	pre       []byte
	parts     []sentPart
	dataStart int64 // original offset of the first data-part octet, -1 before
	dataSize  int64
	keepData  bool
	orig      *Spool
	insts     []*dataInst // data-part instances in the order sent

	pendingRcpt int // index into rcpts of the RCPT awaiting its answer, -1 if none
	pendingMail bool
	mail        partAnswer
	rcpts       []partAnswer
	added       []string // recipients the server added

	// topHeaders are Add-Header fields with Add-Header-At: top.
	topHeaders []headerField
	addHeaders []headerField
	dataReply  *Reply // SMTP-Error on a data part
	advice     ocpsmtp.Advice

	adapted *Spool // the adapted bytes of every data-part answer
	// stopped is set when the processor ended its original flow early
	// (Advice Accept, a bypass): no more parts are sent.
	stopped   bool
	ameSent   bool
	stopAsked bool // the server sent Advice Accept
	// keepRest is set when the original flow stopped early because the
	// server does not need more (DWSR): the rest of the data is kept
	// (not sent) so that the answers can be completed with it.
	keepRest bool
	dwsr     int64 // the server's DWSR org-size, -1 before
	partial  bool  // the server ended its adapted flow with AME 206 after our DSS

	// group lists the URIs of the service group's services; acted, when
	// not nil, those the server's AMS named as acting (OPES-Via).
	group []string
	acted []string

	// held is set while hold's cork keeps the transaction's messages back
	// (informative RCPTs waiting for the data); see hold.
	held bool

	serverSpoke bool // the server sent something for this transaction
	ame         bool // the server's AME arrived
	end         bool // how the transaction ends is decided (TE either way)
	endRes      ocp.Result
	endPending  bool // our TE with endRes is still to be sent (sendEnd)
	fail        *AdaptationError

	recvDone chan struct{} // closed when the receiver returned

	use answerUsage // what the server asked for, against the limits (limits.go)
}

// sentPart is one DUM the processor sent.
type sentPart struct {
	part      ocpsmtp.Part
	off, size int64
}

// partAnswer is the server's answer to one adaptive MAIL or RCPT part.
type partAnswer struct {
	done    bool
	keep    bool   // unchanged
	value   string // the replacement, when !keep && !deleted
	deleted bool
	reply   *Reply // the server refused it with an SMTP reply
}

// segment is one piece of an adapted data-part instance: bytes the server
// sent (in the adapted spool) or a range of the kept original it referenced
// by DUY (offsets in the orig spool).
type segment struct {
	fromOriginal bool
	off, size    int64
}

// dataInst is one instance of a data part the processor sent (RAWDATA,
// ALLHEADERS, BODY, one SINGLEHEADERS field or one SECTIONS entity) with
// the server's answer.
type dataInst struct {
	part      ocpsmtp.Part
	index     string // AM-Index, "" for single-instance parts
	off, size int64  // original octets (absolute offsets)
	answered  bool
	segs      []segment
}

// unchanged reports whether the answer is exactly the original.
func (d *dataInst) unchanged(dataStart int64) bool {
	return d.answered && len(d.segs) == 1 && d.segs[0].fromOriginal &&
		d.segs[0].off == d.off-dataStart && d.segs[0].size == d.size
}

// answerSize is the total size of the answer.
func (d *dataInst) answerSize() int64 {
	var n int64
	for _, s := range d.segs {
		n += s.size
	}
	return n
}

func newExchange(tx *ocp.Tx, prof ocpsmtp.Profile, log *slog.Logger, spoolDir string, spoolMem int, bufs *bufPool) *exchange {
	return &exchange{
		tx: tx, prof: prof, log: log, spoolDir: spoolDir, spoolMem: spoolMem, spoolBufs: bufs,
		changed: make(chan struct{}), dataStart: -1, pendingRcpt: -1, dwsr: -1,
		recvDone: make(chan struct{}),
	}
}

// signal wakes every waiter; call with mu held.
func (x *exchange) signal() {
	close(x.changed)
	x.changed = make(chan struct{})
}

// setFail records the first failure and decides that the OCP transaction
// ends with a 400 result, which sendEnd sends; call with mu held.
func (x *exchange) setFail(f *AdaptationError) {
	if x.fail == nil {
		x.fail = f
		x.decideEnd(ocp.Failure(truncate(f.Error(), 200)))
	}
	x.signal()
}

// decideEnd records how the transaction ends unless that is decided
// already (the first decision wins: a failure found first is not turned
// into a 200 later); call with mu held.
func (x *exchange) decideEnd(res ocp.Result) {
	if !x.end {
		x.end, x.endRes, x.endPending = true, res, true
	}
}

// okResult is the result of a successful transaction.
var okResult = ocp.Result{Code: 200}

// endTimeout bounds the wait of sendEnd for the transaction's own sends in
// progress (a flow paused by the server).
const endTimeout = 5 * time.Second

// sendEnd sends the TE decided by decideEnd, once; call without mu. The
// TE is only ever sent from here: by the session, or by the receiver
// after a failure it found.
func (x *exchange) sendEnd() {
	x.release()
	x.mu.Lock()
	pending, res := x.endPending, x.endRes
	x.endPending = false
	x.mu.Unlock()
	if !pending {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), endTimeout)
	defer cancel()
	if err := x.tx.End(ctx, res); err != nil {
		x.log.Debug("ending the OCP transaction", "err", err)
	}
}

// endOK ends the transaction with 200: the server's answer was validated
// and applied. A failure decided before keeps its 400.
func (x *exchange) endOK() {
	x.mu.Lock()
	x.decideEnd(okResult)
	x.mu.Unlock()
	x.sendEnd()
}

// refusedWith reports whether the server refused the message with an
// SMTP-Error on a data part, and that refusal is r.
func (x *exchange) refusedWith(r Reply) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.dataReply != nil && *x.dataReply == r
}

// failed returns the recorded failure, if any.
func (x *exchange) failed() *AdaptationError {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.fail
}

// abort ends the transaction from our side (RSET, abort, shutdown, a
// failure or an answer that is not applied) with TE 400, unless its end
// was decided already.
func (x *exchange) abort(reason string) {
	x.release()
	x.mu.Lock()
	x.decideEnd(ocp.Failure(truncate(reason, 200)))
	if x.fail == nil {
		x.fail = failure(FailLocal, errors.New(reason))
	}
	x.signal()
	x.mu.Unlock()
	x.sendEnd()
}

// close ends the transaction if nothing ended it yet, waits for the
// receiver to return and releases the spools.
func (x *exchange) close() {
	x.abort("transaction closed")
	<-x.recvDone
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.orig != nil {
		x.orig.Close()
	}
	if x.adapted != nil {
		x.adapted.Close()
	}
}

// wait blocks until cond holds (checked with mu held), the exchange failed,
// or ctx ends; a ctx that ends fails the exchange with a timeout.
func (x *exchange) wait(ctx context.Context, cond func() bool) *AdaptationError {
	x.release() // the server cannot answer what it did not get
	f, timedOut := x.waitUntil(ctx, cond)
	if timedOut {
		f = failure(FailTimeout, ctx.Err())
		x.mu.Lock()
		x.setFail(f)
		x.mu.Unlock()
	}
	return f
}

// waitUntil is wait without the failure on ctx's end: timedOut reports that
// ctx ended first.
func (x *exchange) waitUntil(ctx context.Context, cond func() bool) (f *AdaptationError, timedOut bool) {
	for {
		x.mu.Lock()
		if x.fail != nil {
			f := x.fail
			x.mu.Unlock()
			return f, false
		}
		if cond() {
			x.mu.Unlock()
			return nil, false
		}
		ch := x.changed
		x.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, true
		}
	}
}

// dumParams returns the named parameters of a DUM the processor sends for
// d; with kept, a Kept parameter announces that every original octet up to
// end stays available for DUY until the transaction ends.
func dumParams(d ocpsmtp.Data, kept bool, end int64) []ocp.Param {
	params := d.Params()
	if kept {
		params = append(params, ocp.KeptParam(0, end))
	}
	return params
}

// sendPart sends one whole pre-DATA part (IP, HELO, MAIL, RCPT) as one DUM.
func (x *exchange) sendPart(ctx context.Context, part ocpsmtp.Part, payload []byte, allow []string, opts []ocpsmtp.Opt) error {
	x.mu.Lock()
	off := int64(len(x.pre))
	x.pre = append(x.pre, payload...)
	x.parts = append(x.parts, sentPart{part: part, off: off, size: int64(len(payload))})
	end := int64(len(x.pre))
	x.mu.Unlock()
	d := ocpsmtp.Data{Part: part, Allow: allow, Opts: opts}
	if _, err := x.tx.Send(ctx, dumParams(d, true, end), payload); err != nil {
		return failure(FailServer, err)
	}
	return nil
}

// sendData sends one chunk of a data-part instance: a new instance when
// part or index differ from the last one sent. Data parts are kept for DUY
// when any data part is adaptive.
func (x *exchange) sendData(ctx context.Context, part ocpsmtp.Part, index string, chunk []byte, allow []string, opts []ocpsmtp.Opt) error {
	return x.addData(ctx, part, index, chunk, allow, opts, true)
}

// keepUnsent records one chunk of a data-part instance that is not sent
// because the original flow stopped early (keepRest): the answers are
// completed with it at end of message.
func (x *exchange) keepUnsent(part ocpsmtp.Part, index string, chunk []byte) error {
	return x.addData(context.Background(), part, index, chunk, nil, nil, false)
}

func (x *exchange) addData(ctx context.Context, part ocpsmtp.Part, index string, chunk []byte, allow []string, opts []ocpsmtp.Opt, send bool) error {
	x.mu.Lock()
	if x.dataStart < 0 {
		x.dataStart = int64(len(x.pre))
		x.keepData = x.adaptsData()
		if x.keepData {
			x.orig = newPooledSpool(x.spoolDir, x.spoolMem, x.spoolBufs)
		}
	}
	var inst *dataInst
	if n := len(x.insts); n > 0 && x.insts[n-1].part == part && x.insts[n-1].index == index {
		inst = x.insts[n-1]
	} else {
		inst = &dataInst{part: part, index: index, off: x.dataStart + x.dataSize}
		x.insts = append(x.insts, inst)
	}
	first := inst.size == 0
	if x.keepData {
		if _, err := x.orig.Write(chunk); err != nil {
			x.mu.Unlock()
			return failure(FailLocal, err)
		}
	}
	x.dataSize += int64(len(chunk))
	inst.size += int64(len(chunk))
	end := x.dataStart + x.dataSize
	x.mu.Unlock()
	if !send {
		return nil
	}
	d := ocpsmtp.Data{Part: part, Index: index, Opts: opts}
	if first {
		d.Allow = allow
	}
	if _, err := x.tx.Send(ctx, dumParams(d, x.keepData, end), chunk); err != nil {
		return failure(FailServer, err)
	}
	return nil
}

// instance returns the data-part instance for a server answer.
func (x *exchange) instance(part ocpsmtp.Part, index string) *dataInst {
	for _, d := range x.insts {
		if d.part == part && d.index == index {
			return d
		}
	}
	return nil
}

// instanceAt returns the instance holding the original octets [off, off+size).
func (x *exchange) instanceAt(off, size int64) *dataInst {
	for _, d := range x.insts {
		if off >= d.off && off+size <= d.off+d.size {
			return d
		}
	}
	return nil
}

// completeWithOriginal ends the answer of instance d, given before a flow
// stopped early (the server's AME 206 after our DSS, or ours after its
// DWSR), with the original octets of d after the last one the answer
// reused by DUY, or all of d when it reused none (docs/profile.md 6);
// call with mu held.
func (x *exchange) completeWithOriginal(d *dataInst) {
	rest := d.off
	for _, sg := range d.segs {
		if sg.fromOriginal {
			rest = max(rest, x.dataStart+sg.off+sg.size)
		}
	}
	if end := d.off + d.size; rest < end {
		d.segs = append(d.segs, segment{fromOriginal: true, off: rest - x.dataStart, size: end - rest})
	}
}

// content returns a reader of an instance's adapted bytes; call with mu held.
func (x *exchange) content(d *dataInst) (io.Reader, error) {
	readers := make([]io.Reader, 0, len(d.segs))
	for _, sg := range d.segs {
		var r io.Reader
		var err error
		if sg.fromOriginal {
			r, err = x.orig.Section(sg.off, sg.size)
		} else {
			r, err = x.adapted.Section(sg.off, sg.size)
		}
		if err != nil {
			return nil, err
		}
		readers = append(readers, r)
	}
	return io.MultiReader(readers...), nil
}

// endOriginal sends the processor's AME once: 200 at the end of the
// message, 206 when it stops early.
func (x *exchange) endOriginal(res ocp.Result) error {
	x.mu.Lock()
	if x.ameSent {
		x.mu.Unlock()
		return nil
	}
	x.ameSent = true
	x.stopped = res.Code != 200
	x.mu.Unlock()
	err := x.tx.EndMessage(res)
	x.release()
	return err
}

// truncate shortens s to at most n bytes for log and reason texts.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
