package bridge

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// exchange drives one OCP transaction: the OCP side of one SMTP mail
// transaction. The session goroutine sends the original parts in SMTP
// order; a receiver goroutine reads the callout server's answers as they
// come (adapted data is spooled as it arrives, never queued in memory) and
// wakes the session when an answer it waits for is there.
type exchange struct {
	tx   *ocp.Tx
	prof ocpsmtp.Profile // negotiated for the service group
	log  *slog.Logger

	spoolDir string
	spoolMem int

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change

	// Original data, offsets from 0: the pre-DATA parts in memory (small,
	// always kept) and, for adaptive RAWDATA, the kept original RAWDATA.
	pre      []byte
	rawStart int64 // original offset of the first RAWDATA octet, -1 before
	rawSize  int64
	origRaw  *Spool
	parts    []sentPart

	pendingRcpt int // index into rcpts of the RCPT awaiting its answer, -1 if none
	pendingMail bool
	mail        partAnswer
	rcpts       []partAnswer
	added       []string // recipients the server added

	addHeaders []headerField
	dataReply  *Reply // SMTP-Error on a data part
	advice     ocpsmtp.Advice

	segs    []segment // the adapted RAWDATA, in order
	adapted *Spool
	// stopped is set when the processor ended its original flow early
	// (Advice Accept, a bypass): no more parts are sent.
	stopped   bool
	ameSent   bool
	stopAsked bool // the server sent Advice Accept

	ame  bool // the server's AME arrived
	end  bool // the transaction ended (TE either way)
	fail *AdaptationError
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

// segment is one piece of the adapted RAWDATA: bytes the server sent (in
// the adapted spool) or a range of the kept original it referenced by DUY.
type segment struct {
	fromOriginal bool
	off, size    int64
}

func newExchange(tx *ocp.Tx, prof ocpsmtp.Profile, log *slog.Logger, spoolDir string, spoolMem int) *exchange {
	return &exchange{
		tx: tx, prof: prof, log: log, spoolDir: spoolDir, spoolMem: spoolMem,
		changed: make(chan struct{}), rawStart: -1, pendingRcpt: -1,
	}
}

// signal wakes every waiter; call with mu held.
func (x *exchange) signal() {
	close(x.changed)
	x.changed = make(chan struct{})
}

// setFail records the first failure and ends the OCP transaction with a 400
// result; call with mu held.
func (x *exchange) setFail(f *AdaptationError) {
	if x.fail == nil {
		x.fail = f
		if !x.end {
			x.end = true
			go x.tx.End(ocp.Result{Code: 400, Reason: truncate(f.Error(), 200)})
		}
	}
	x.signal()
}

// failed returns the recorded failure, if any.
func (x *exchange) failed() *AdaptationError {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.fail
}

// abort ends the transaction from our side (RSET, abort, shutdown).
func (x *exchange) abort(reason string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.end {
		x.end = true
		go x.tx.End(ocp.Result{Code: 400, Reason: reason})
	}
	if x.fail == nil {
		x.fail = failure(FailLocal, errors.New(reason))
	}
	x.signal()
}

// close releases the spools.
func (x *exchange) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.origRaw != nil {
		x.origRaw.Close()
	}
	if x.adapted != nil {
		x.adapted.Close()
	}
}

// wait blocks until cond holds (checked with mu held), the exchange failed,
// or ctx ends; a ctx that ends fails the exchange with a timeout.
func (x *exchange) wait(ctx context.Context, cond func() bool) *AdaptationError {
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

// keptParam announces that every original octet sent so far stays available
// for DUY until the transaction ends.
func (x *exchange) keptParam(end int64) ocp.Param {
	return ocp.Param{Name: "Kept", Values: []ocp.Value{ocp.Atom("0"), ocp.Atom(strconv.FormatInt(end, 10))}}
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
	params := append(d.Params(), x.keptParam(end))
	if _, err := x.tx.Send(ctx, params, payload); err != nil {
		return failure(FailServer, err)
	}
	return nil
}

// sendRaw sends one chunk of RAWDATA; adaptive RAWDATA is kept for DUY.
func (x *exchange) sendRaw(ctx context.Context, chunk []byte, adaptive bool, allow []string, opts []ocpsmtp.Opt) error {
	x.mu.Lock()
	first := x.rawStart < 0
	if first {
		x.rawStart = int64(len(x.pre))
		x.parts = append(x.parts, sentPart{part: ocpsmtp.PartRAWDATA, off: x.rawStart})
		if adaptive {
			x.origRaw = NewSpool(x.spoolDir, x.spoolMem)
		}
	}
	if adaptive {
		if _, err := x.origRaw.Write(chunk); err != nil {
			x.mu.Unlock()
			return failure(FailLocal, err)
		}
	}
	x.rawSize += int64(len(chunk))
	x.parts[len(x.parts)-1].size = x.rawSize
	end := x.rawStart + x.rawSize
	x.mu.Unlock()
	d := ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}
	if first {
		d.Allow, d.Opts = allow, opts
	}
	params := d.Params()
	if adaptive {
		params = append(params, x.keptParam(end))
	}
	if _, err := x.tx.Send(ctx, params, chunk); err != nil {
		return failure(FailServer, err)
	}
	return nil
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
	return x.tx.EndMessage(res)
}

// truncate shortens s to at most n bytes for log and reason texts.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
