package ocp

import (
	"context"
)

// outFlow is the sending side of one dataflow: the processor's original
// flow or the server's adapted flow (RFC 4037 §2.2, §2.3). It counts
// my-offset and implements pausing (DWP, DPM, DWM; RFC 4037 §11.15-11.17).
// It is guarded by the owning transaction's mu.
type outFlow struct {
	started  bool  // AMS sent
	ended    bool  // AME sent
	offset   int64 // my-offset of the next data message
	inflight bool  // a data message is being queued
	pauseAt  int64 // your-offset of the peer's DWP, -1 if none
	dpmSent  bool
	resume   chan struct{} // closed when the peer sends DWM
}

func newOutFlow() outFlow {
	return outFlow{pauseAt: -1, resume: make(chan struct{})}
}

// active reports whether the flow has started and not ended.
func (f *outFlow) active() bool { return f.started && !f.ended }

// stopped reports whether the flow must not send data now: the peer asked
// for a pause at an offset we have reached.
func (f *outFlow) stopped() bool { return f.pauseAt >= 0 && f.offset >= f.pauseAt }

// inFlow is the receiving side of the peer's dataflow. It checks the
// ordering and no-gap rules (RFC 4037 §11.9) on AMS, DUM, DUY and AME.
type inFlow struct {
	started bool  // AMS received
	ended   bool  // AME received
	offset  int64 // expected my-offset of the peer's next data message
}

// preservation tracks the processor's data preservation commitment as
// announced with Kept, and the server's reusable area declared with DPI
// (RFC 4037 §7).
type preservation struct {
	kept               bool
	keptOff, keptEnd   int64 // announced kept range [keptOff, keptEnd)
	reuseOff, reuseEnd int64 // reusable area, shrinks with each DPI
}

func newPreservation() preservation {
	return preservation{reuseOff: 0, reuseEnd: MaxSize}
}

// keep merges an announced Kept range.
func (p *preservation) keep(off, size int64) {
	end := off + size
	if !p.kept {
		p.kept, p.keptOff, p.keptEnd = true, off, end
		return
	}
	p.keptOff = min(p.keptOff, off)
	p.keptEnd = max(p.keptEnd, end)
}

// covers reports whether [off, off+size) may be used by DUY: it is kept and
// not declared disposable.
func (p *preservation) covers(off, size int64) bool {
	end := off + size
	return p.kept && off >= p.keptOff && end <= p.keptEnd && off >= p.reuseOff && end <= p.reuseEnd
}

// shrink applies a DPI. It reports false when the new reusable area is not
// inside the previous one, which makes the DPI invalid.
func (p *preservation) shrink(off, size int64) bool {
	end := off + size
	if size == 0 {
		p.reuseOff, p.reuseEnd = off, off
		return true
	}
	if off < p.reuseOff || end > p.reuseEnd {
		return false
	}
	p.reuseOff, p.reuseEnd = off, end
	return true
}

// keptParam parses a Kept parameter: org-offset org-size.
func keptParam(p Param) (off, size int64, err error) {
	if len(p.Values) != 2 {
		return 0, 0, badValue("Kept needs offset and size")
	}
	if off, err = Uint(p.Values[0]); err != nil {
		return 0, 0, err
	}
	if size, err = Uint(p.Values[1]); err != nil {
		return 0, 0, err
	}
	return off, size, nil
}

// KeptParam returns the Kept parameter announcing that the processor keeps
// the original octets [offset, offset+size) for DUY (RFC 4037 §11.9).
func KeptParam(offset, size int64) Param {
	return Param{Name: ParamKept, Values: []Value{Num(offset), Num(size)}}
}

// waitChan blocks until ch is closed, ctx is done or the transaction ends.
func waitChan(ctx context.Context, ch, done <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return nil
	}
}
