package callout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// sendChunk is the payload size of the DUMs carrying a replaced message.
const sendChunk = 64 << 10

// txn is the server side of one OCP transaction: the original parts come
// in, answers for the adaptive ones go out.
type txn struct {
	s     *Server
	otx   *ocp.ServerTx
	chain *Chain
	prof  *ocpsmtp.Profile // negotiated; nil when only the connection negotiated
	tx    *Tx

	acting  []ocp.Service // named in our AMS when not all services act; nil: all
	started bool          // our AMS went out
	done    bool          // our AME went out
	rank    int           // rank of the last part received (SMTP order)

	raw      *Spool
	rawStart int64 // original offset of the first RAWDATA octet, -1 before
	rawData  ocpsmtp.Data
	insts    []*dataInst // instances of the other data parts (txn_parts.go)
	result   string      // for the metrics: ok, refused, failed, aborted

	refusedRcpts int    // recipients a service refused
	messageID    string // the message's Message-ID, for the log
}

// serveTx is the ocp.Handler of the server.
func (s *Server) serveTx(ctx context.Context, otx *ocp.ServerTx) {
	timeout := s.TxTimeout
	if timeout <= 0 {
		timeout = DefaultTxTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	g := otx.Group()
	t := &txn{s: s, otx: otx, rawStart: -1, result: "ok"}
	id := "t" + strconv.FormatInt(s.txSeq.Add(1), 10)
	t.tx = &Tx{
		ID:     id,
		Start:  time.Now(),
		Logger: s.logger().With("tx", id, "ocp_tx", otx.Key(), "sg", g.ID),
	}
	defer func() {
		if t.raw != nil {
			t.raw.Discard()
		}
		t.discardParts()
		if s.Observer != nil {
			s.Observer.ObserveTransaction(t.result, time.Since(t.tx.Start))
		}
		t.logDone()
	}()
	chain, release, err := s.heldChain(g.Services)
	if err != nil {
		t.fail(err)
		return
	}
	defer release()
	t.chain = chain
	if g.Profile != nil {
		p, err := ocpsmtp.ParseProfile(*g.Profile)
		if err != nil {
			t.fail(err)
			return
		}
		t.prof = &p
	}
	t.acting = actingServices(g.Services, chain, t.prof)
	if t.acting != nil {
		t.tx.Logger.Info("not every service can act on what was negotiated; the AMS names those that do", "acting", len(t.acting), "services", len(g.Services))
	}
	if err := t.run(ctx); err != nil {
		t.fail(err)
	}
}

// fail ends the transaction with a 400 result.
func (t *txn) fail(err error) {
	if errors.Is(err, context.Canceled) {
		t.result = "aborted"
		return
	}
	t.result = "failed"
	t.tx.Logger.Warn("transaction failed", "err", err)
	reason := err.Error()
	if len(reason) > 200 {
		reason = reason[:200]
	}
	_ = t.otx.EndWith(context.Background(), ocp.Failure(reason), serviceFailure(err)...)
}

// serviceFailure returns the Service-Failure parameter (docs/profile.md,
// section 10.1) when err is a service's failure to reach its backend (a
// *BackendError): the failure is that service's, not the server's.
func serviceFailure(err error) []ocp.Param {
	var be *BackendError
	var se *ServiceError
	if !errors.As(err, &be) || !errors.As(err, &se) {
		return nil
	}
	return []ocp.Param{ocpsmtp.ServiceFailureParam(se.Service)}
}

func (t *txn) run(ctx context.Context) error {
	for {
		m, err := t.otx.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var te *ocp.TxError
			var ce *ocp.ConnError
			switch {
			case errors.As(err, &ce) && t.done:
				// The processor has all it needs and closed the
				// connection without a TE: fine.
				return nil
			case errors.As(err, &te), errors.As(err, &ce):
				t.result = "aborted"
				if t.refusedRcpts > 0 && len(t.tx.Recipients) == 0 {
					// Every recipient was refused here: the MTA ends the
					// transaction, and the processor with it.
					t.result = "refused"
				}
				t.tx.Logger.Debug("transaction ended by the processor", "err", err)
				return nil
			}
			return err
		}
		switch m.Name {
		case ocp.MsgDUM:
			if err := t.corked(func() error { return t.dum(ctx, m) }); err != nil {
				return err
			}
		case ocp.MsgAME:
			if err := t.corked(func() error { return t.ame(ctx, m) }); err != nil {
				return err
			}
		case ocp.MsgTE:
			if te, err := ocpsmtp.ParseTE(m); err == nil && te.Result.Failed() {
				t.result = "aborted"
			}
		}
	}
}

// corked runs the handling of one message of the processor with the
// transaction corked, so that its answers (AMS, DUY or DUMs, AME, TE) reach
// the processor in one write. The services run meanwhile; the other
// transactions of the connection are not held back.
func (t *txn) corked(handle func() error) error {
	t.otx.Cork()
	defer t.otx.Uncork()
	return handle()
}

// adaptive reports whether the processor waits for an answer to part. With
// a profile negotiated for the group, the profile says; otherwise (the
// connection negotiated it) the processor's Allow list does: it offers
// SMTP-Error exactly for the parts it lets the server change.
func (t *txn) adaptive(part ocpsmtp.Part, d ocpsmtp.Data) bool {
	if t.prof != nil {
		a, _ := t.prof.Has(part)
		return a
	}
	return d.Allows(ocpsmtp.AllowSMTPError)
}

func (t *txn) dum(ctx context.Context, m *ocp.Message) error {
	d, err := ocpsmtp.ParseData(m)
	if err != nil {
		return err
	}
	off, err := m.AnonUint(1)
	if err != nil {
		return err
	}
	if r := d.Part.Rank(); r > 0 {
		if r < t.rank {
			return fmt.Errorf("callout: part %s out of SMTP order", d.Part)
		}
		t.rank = r
	}
	t.tx.Opts = mergeOpts(t.tx.Opts, d.Opts)
	switch d.Part {
	case ocpsmtp.PartIP:
		t.tx.Client.IP = string(m.Payload)
	case ocpsmtp.PartHELO, ocpsmtp.PartEHLO:
		t.tx.Client.Helo = string(m.Payload)
	case ocpsmtp.PartMAIL, ocpsmtp.PartRCPT:
		return t.address(ctx, d, off, m.Payload)
	case ocpsmtp.PartRAWDATA:
		if t.raw == nil {
			t.raw = NewSpool(t.s.Spool)
			t.rawStart = off
			t.rawData = d
		}
		if _, err := t.raw.Write(m.Payload); err != nil {
			return err
		}
	case ocpsmtp.PartALLHEADERS, ocpsmtp.PartSINGLEHEADERS, ocpsmtp.PartBODY, ocpsmtp.PartSECTIONS:
		return t.addPart(d, off, m.Payload)
	}
	return nil
}

// address handles a MAIL or RCPT part: read, and answered at once when
// adaptive.
func (t *txn) address(ctx context.Context, d ocpsmtp.Data, off int64, payload []byte) error {
	a, err := ParseAddress(payload)
	if err != nil {
		return err
	}
	if !t.adaptive(d.Part, d) {
		t.note(d.Part, a)
		return nil
	}
	var dec Decision
	if d.Part == ocpsmtp.PartMAIL {
		dec, err = t.chain.AdaptMail(ctx, t.tx, a)
	} else {
		dec, err = t.chain.AdaptRcpt(ctx, t.tx, a)
	}
	if err != nil {
		return err
	}
	if err := t.start(); err != nil {
		return err
	}
	extra, more := t.annotations(d, dec)
	switch dec.Action {
	case ActionRefuse:
		if !d.Allows(ocpsmtp.AllowSMTPError) {
			return fmt.Errorf("callout: %s refused by %s, but the processor does not allow SMTP-Error", d.Part, t.tx.Service)
		}
		params := ocpsmtp.Data{Part: d.Part, SMTPError: dec.Reply.String()}.Params()
		if dec.Advice != "" && d.Allows(ocpsmtp.AllowAdvice) {
			params = append(params, ocp.NewParam(ocpsmtp.ParamAdvice, ocp.Atom(dec.Advice)))
		}
		_, err = t.otx.Send(ctx, params, []byte{})
		t.tx.Logger.Info("refused", t.decided(dec, "part", string(d.Part), "addr", a.Addr, "reply", dec.Reply.String())...)
		if d.Part == ocpsmtp.PartMAIL {
			t.result = "refused"
		}
		if d.Part == ocpsmtp.PartRCPT {
			t.refusedRcpts++
		}
		return err
	case ActionReplace:
		params := append(ocpsmtp.Data{Part: d.Part}.Params(), extra...)
		_, err = t.otx.Send(ctx, params, []byte(dec.Address.String()))
		t.tx.Logger.Info("replaced", t.reason(dec, "part", string(d.Part), "from", a.Addr, "to", dec.Address.Addr)...)
		t.note(d.Part, dec.Address)
	default:
		t.note(d.Part, a)
		err = t.keep(ctx, d.Part, off, payload, extra)
	}
	if err != nil {
		return err
	}
	return t.annotate(ctx, d.Part, more)
}

// note records the (adapted) sender or an accepted recipient.
func (t *txn) note(part ocpsmtp.Part, a Address) {
	if part == ocpsmtp.PartMAIL {
		t.tx.Sender = a
	} else {
		t.tx.Recipients = append(t.tx.Recipients, a)
	}
}
