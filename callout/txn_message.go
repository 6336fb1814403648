package callout

import (
	"context"
	"fmt"
	"io"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// ame handles the end of the original message: the message services run
// and the adapted message is completed.
func (t *txn) ame(ctx context.Context, m *ocp.Message) error {
	if len(m.Anon) > 1 {
		if r, err := ocp.ParseResult(m.Anon[1]); err == nil && r.Failed() {
			t.result = "aborted"
			return t.otx.End(ocp.Result{})
		}
	}
	if err := t.start(); err != nil {
		return err
	}
	if t.raw != nil && t.adaptive(ocpsmtp.PartRAWDATA, t.rawData) {
		if err := t.message(ctx); err != nil {
			return err
		}
	}
	if err := t.otx.EndMessage(ocp.Result{}); err != nil {
		return err
	}
	t.done = true
	return nil
}

// message runs the chain on the spooled RAWDATA and sends the answer.
func (t *txn) message(ctx context.Context) error {
	sp := t.raw
	t.raw = nil
	msg, err := sp.Message()
	if err != nil {
		return err
	}
	defer msg.Close()
	dec, err := t.chain.AdaptMessage(ctx, t.tx, msg)
	if err != nil {
		return err
	}
	d := t.rawData
	if dec.Action == ActionRefuse {
		if !d.Allows(ocpsmtp.AllowSMTPError) {
			return fmt.Errorf("callout: message refused by %s, but the processor does not allow SMTP-Error", t.tx.Service)
		}
		t.result = "refused"
		t.tx.Logger.Info("message refused", "reply", dec.Reply.String(), "reason", dec.Reason)
		params := ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, SMTPError: dec.Reply.String()}.Params()
		if dec.Advice != "" && d.Allows(ocpsmtp.AllowAdvice) {
			params = append(params, ocp.NewParam(ocpsmtp.ParamAdvice, ocp.Atom(dec.Advice)))
		}
		_, err := t.otx.Send(ctx, params, []byte{})
		return err
	}
	// The first data message carries the advice and the first header
	// field; annotation DUMs carry the others, one each.
	first, headers := t.annotations(d, dec)
	out := msg
	if dec.Action == ActionReplace {
		out = dec.Message
		defer out.Close()
		t.tx.Logger.Info("message replaced", "size", out.Size(), "reason", dec.Reason)
	}
	if out == msg && t.kept(t.rawStart, msg.Size()) {
		err = t.otx.SendDUY(t.rawStart, msg.Size(), first...)
	} else {
		err = t.sendMessage(ctx, out, first)
	}
	if err != nil {
		return err
	}
	return t.annotate(ctx, ocpsmtp.PartRAWDATA, headers)
}

// sendMessage sends m as RAWDATA DUMs; the first carries first.
func (t *txn) sendMessage(ctx context.Context, m *Message, first []ocp.Param) error {
	r := m.NewReader()
	buf := make([]byte, sendChunk)
	params := append(ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}.Params(), first...)
	sent := false
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 || !sent {
			if _, err := t.otx.Send(ctx, params, append([]byte(nil), buf[:n]...)); err != nil {
				return err
			}
			sent = true
			params = ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}.Params()
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
