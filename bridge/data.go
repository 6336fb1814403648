package bridge

import (
	"context"
	"strings"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file holds the session's OCP side during the message data: the
// header and body as the negotiated data parts, queued (pending.go) and
// sent in DUMs, the server's early stops (DWSR, Advice Accept, a bypass)
// and the oversize action.

// maxDUM is the largest payload of one data DUM.
const maxDUM = 64 << 10

// headerBlock returns the header section as the data parts carry it: each
// field "Name:value" CRLF, then the empty line.
func headerBlock(fields []headerField) string {
	var b strings.Builder
	for _, h := range fields {
		b.WriteString(h.name)
		b.WriteByte(':')
		b.WriteString(h.value)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// sendHeader sends the header parts once, at the end of the header (or at
// the first body chunk or end of message, whichever comes first).
func (s *session) sendHeader(ctx context.Context, mac Macros) Reply {
	mt, x := s.mt, s.mt.x
	if mt.headerSent || x == nil || mt.fail != nil {
		return Reply{Kind: Continue}
	}
	mt.headerSent = true
	if !x.negotiatesData() {
		return Reply{Kind: Continue}
	}
	if s.bypassRequested() {
		mt.status = traceBypassed
		if err := s.stopOriginal("bypass"); err != nil {
			return s.onFailure(failure(FailServer, err), false)
		}
		return Reply{Kind: Continue}
	}
	block := headerBlock(mt.headers)
	switch {
	case x.negotiated(ocpsmtp.PartRAWDATA):
		return s.sendChunk(ctx, mac, ocpsmtp.PartRAWDATA, "", []byte(block))
	case x.negotiated(ocpsmtp.PartALLHEADERS):
		if rep := s.sendChunk(ctx, mac, ocpsmtp.PartALLHEADERS, "", []byte(block)); rep.Kind != Continue {
			return rep
		}
	case x.negotiated(ocpsmtp.PartSINGLEHEADERS):
		for i, h := range mt.headers {
			if !x.wantsHeader(h.name) {
				continue
			}
			field := h.name + ":" + h.value + "\r\n"
			if rep := s.sendChunk(ctx, mac, ocpsmtp.PartSINGLEHEADERS, ocpsmtp.FormatIndex(i+1), []byte(field)); rep.Kind != Continue {
				return rep
			}
		}
	}
	return Reply{Kind: Continue}
}

// sendBody streams one body chunk: as RAWDATA or BODY at once, into the
// body spool for SECTIONS (which are cut at end of message).
func (s *session) sendBody(ctx context.Context, mac Macros, chunk []byte) Reply {
	mt, x := s.mt, s.mt.x
	mt.bodyBytes += int64(len(chunk))
	if mt.fail != nil || x == nil {
		return Reply{Kind: Continue}
	}
	if max := s.policy().MaxMessageSize; max > 0 && int64(mt.headerBytes)+mt.bodyBytes > max {
		return s.oversize()
	}
	switch {
	case x.negotiated(ocpsmtp.PartRAWDATA):
		return s.sendChunk(ctx, mac, ocpsmtp.PartRAWDATA, "", chunk)
	case x.negotiated(ocpsmtp.PartBODY):
		return s.sendChunk(ctx, mac, ocpsmtp.PartBODY, "", chunk)
	case x.negotiated(ocpsmtp.PartSECTIONS):
		if mt.body == nil {
			mt.body = NewSpool(s.policy().SpoolDir, s.policy().SpoolMemory)
		}
		if _, err := mt.body.Write(chunk); err != nil {
			return s.onFailure(failure(FailLocal, err), false)
		}
		return s.pendingReply()
	}
	if x.negotiatesData() {
		return Reply{Kind: Continue}
	}
	return Reply{Kind: Skip}
}

// sendBodyEnd sends what only end of message can: an empty BODY, or the
// SECTIONS cut from the spooled body.
func (s *session) sendBodyEnd(ctx context.Context, mac Macros) Reply {
	mt, x := s.mt, s.mt.x
	if mt.fail != nil || x == nil {
		return Reply{Kind: Continue}
	}
	switch {
	case x.negotiated(ocpsmtp.PartBODY) && mt.bodyBytes == 0:
		return s.sendChunk(ctx, mac, ocpsmtp.PartBODY, "", []byte{})
	case x.negotiated(ocpsmtp.PartSECTIONS):
		if mt.body == nil {
			mt.body = NewSpool(s.policy().SpoolDir, s.policy().SpoolMemory)
		}
		ra := mt.body.ReaderAt()
		secs, err := splitSections(ra, mt.body.Size(), mt.header("Content-Type"))
		if err != nil {
			return s.onFailure(failure(FailLocal, err), false)
		}
		mt.sections = secs
		for _, sec := range mt.sections {
			buf := make([]byte, min(maxDUM, sec.end-sec.start))
			for off := sec.start; off < sec.end || off == sec.start; {
				n := min(int64(len(buf)), sec.end-off)
				if _, err := ra.ReadAt(buf[:n], off); err != nil {
					return s.onFailure(failure(FailLocal, err), false)
				}
				if rep := s.sendChunk(ctx, mac, ocpsmtp.PartSECTIONS, sec.index(), buf[:n]); rep.Kind != Continue {
					return rep
				}
				off += n
				if n == 0 {
					break
				}
			}
		}
	}
	return Reply{Kind: Continue}
}

// queuedEnd returns the original offset after the data sent and queued.
func (s *session) queuedEnd() int64 {
	return s.mt.x.sentEnd() + int64(len(s.mt.pending.buf))
}

// stopForDWSR ends the original flow after the server's DWSR, at the
// chunk b of part/index: the queued data goes out while less than
// org-size octets were sent, then AME 206 (the engine sends DSS first
// after a DWSS, RFC 4037 §8.3). When a data part is adaptive, the rest of
// the message, b included, is kept (before the AME goes out, so that the
// server's answers find their instances) but not sent, and completes the
// answers at end of message (docs/profile.md 6); otherwise the MTA is
// told to skip it.
func (s *session) stopForDWSR(ctx context.Context, orgSize int64, part ocpsmtp.Part, index string, b []byte) Reply {
	x, pd := s.mt.x, &s.mt.pending
	keep := x.adaptsData()
	if x.sentEnd() < orgSize {
		if rep := s.flushData(ctx); rep.Kind != Continue {
			return rep
		}
	}
	if !keep {
		if err := s.stopOriginal("DWSR"); err != nil {
			return s.onFailure(failure(FailServer, err), false)
		}
		return Reply{Kind: Skip}
	}
	x.keepTheRest()
	for _, d := range pd.dums {
		if err := x.keepUnsent(d.part, d.index, pd.buf[d.start:d.end]); err != nil {
			return s.onFailure(failure(FailLocal, err), false)
		}
	}
	pd.reset()
	if err := x.keepUnsent(part, index, b); err != nil {
		return s.onFailure(failure(FailLocal, err), false)
	}
	if err := x.endOriginal(ocp.Result{Code: ocp.CodePartial, Reason: "DWSR"}); err != nil {
		return s.onFailure(failure(FailServer, err), false)
	}
	return Reply{Kind: Continue}
}

// stopOriginal ends the original message early (AME 206); data still
// queued is not sent.
func (s *session) stopOriginal(reason string) error {
	s.mt.pending.reset()
	return s.mt.x.endOriginal(ocp.Result{Code: 206, Reason: reason})
}

// oversize applies the configured action to a message larger than the
// adaptation limit.
func (s *session) oversize() Reply {
	mt := s.mt
	switch s.policy().Oversize {
	case mapping.SkipAdaptation, mapping.Accept:
		if mt.status != traceSkipped {
			mt.status = traceSkipped
			s.log.Info("message too large to adapt; delivered as received", "route", routeName(mt.route))
			if err := s.stopOriginal("oversize"); err != nil {
				return s.onFailure(failure(FailServer, err), false)
			}
		}
		return Reply{Kind: Skip}
	case mapping.TempFail:
		s.dropExchange("message too large")
		return Reply{Kind: TempFail, SMTP: ocpsmtp.Reply{Code: 452, Text: "4.3.4 Message too large for content adaptation"}}
	}
	s.dropExchange("message too large")
	return Reply{Kind: Reject, SMTP: ocpsmtp.Reply{Code: 552, Text: "5.3.4 Message too large for content adaptation"}}
}

// pendingReply returns a refusal or stop the server already sent.
func (s *session) pendingReply() Reply {
	if r := s.mt.x.dataRefusal(); r != nil {
		return *r
	}
	return Reply{Kind: Continue}
}

// sendChunk queues one chunk of a data-part instance (see pending),
// unless the server already refused the message or asked to adapt no
// further.
func (s *session) sendChunk(ctx context.Context, mac Macros, part ocpsmtp.Part, index string, b []byte) Reply {
	x := s.mt.x
	fl := x.flow()
	stop, stopped, reply, keepRest, dwsr := fl.stopAsked, fl.stopped, fl.refusal, fl.keepRest, fl.dwsr
	if reply != nil {
		// An SMTP-Error for the message is the answer to the next event.
		return *reply
	}
	if keepRest {
		// The server needs no more (DWSR): the rest is kept, not sent.
		if err := x.keepUnsent(part, index, b); err != nil {
			return s.onFailure(failure(FailLocal, err), false)
		}
		return Reply{Kind: Continue}
	}
	if dwsr >= 0 && !stopped && !stop && s.queuedEnd() >= dwsr {
		return s.stopForDWSR(ctx, dwsr, part, index, b)
	}
	if stop && !stopped {
		// Advice Accept: adapt no further (docs/profile.md 9). What is
		// still queued is not sent.
		if err := s.stopOriginal("advice accept"); err != nil {
			return s.onFailure(failure(FailServer, err), false)
		}
		return Reply{Kind: Skip}
	}
	if stopped {
		return Reply{Kind: Skip}
	}
	var opts []ocpsmtp.Opt
	if !s.mt.dataOpts {
		// Values that became known since MAIL (the queue id) go on
		// the first data DUM only (docs/profile.md 5.4).
		s.mt.dataOpts = true
		opts = s.newOpts(mac)
	}
	pd := &s.mt.pending
	if !pd.fits(len(b)) {
		if rep := s.flushData(ctx); rep.Kind != Continue {
			return rep
		}
	}
	if pd.fits(len(b)) {
		pd.add(s.b.pendingBufs, part, index, opts, b)
		return Reply{Kind: Continue}
	}
	return s.sendDUMs(ctx, part, index, opts, b)
}

// flushData sends the queued data DUMs, in one write.
func (s *session) flushData(ctx context.Context) Reply {
	pd := &s.mt.pending
	if len(pd.dums) == 0 {
		return Reply{Kind: Continue}
	}
	x := s.mt.x
	x.cork()
	defer x.uncork()
	x.release() // held RCPTs leave with this data, not after it
	for _, d := range pd.dums {
		if rep := s.sendDUMs(ctx, d.part, d.index, d.opts, pd.buf[d.start:d.end]); rep.Kind != Continue {
			pd.reset()
			return rep
		}
	}
	pd.reset()
	return Reply{Kind: Continue}
}

// sendDUMs sends one chunk of a data-part instance, in DUMs of at most
// maxDUM octets.
func (s *session) sendDUMs(ctx context.Context, part ocpsmtp.Part, index string, opts []ocpsmtp.Opt, b []byte) Reply {
	x := s.mt.x
	cctx, cancel := stageContext(ctx, s.policy().Timeouts.EndOfMessage)
	defer cancel()
	for len(b) > maxDUM {
		if err := x.sendData(cctx, part, index, b[:maxDUM], x.allowFor(part), opts); err != nil {
			return s.onFailure(failure(FailServer, err), false)
		}
		b = b[maxDUM:]
		opts = nil
	}
	if err := x.sendData(cctx, part, index, b, x.allowFor(part), opts); err != nil {
		return s.onFailure(failure(FailServer, err), false)
	}
	if f := x.failed(); f != nil {
		return s.onFailure(f, false)
	}
	return Reply{Kind: Continue}
}

// newOpts returns the AM-OPT values known now that were not sent yet in
// this transaction.
func (s *session) newOpts(mac Macros) []ocpsmtp.Opt {
	var opts []ocpsmtp.Opt
	for _, km := range optMacros() {
		v := mac.Get(km.macro)
		if v == "" || s.mt.optsSent[km.key] {
			continue
		}
		if s.mt.optsSent == nil {
			s.mt.optsSent = map[string]bool{}
		}
		s.mt.optsSent[km.key] = true
		opts = append(opts, ocpsmtp.Opt{Key: km.key, Value: v})
	}
	return opts
}

// header returns the raw value of the first field called name.
func (mt *mailTx) header(name string) string {
	for _, h := range mt.headers {
		if strings.EqualFold(h.name, name) {
			return h.value
		}
	}
	return ""
}
