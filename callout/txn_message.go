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
	if a, err := ocpsmtp.ParseAME(m); err == nil && a.Result.Failed() {
		t.result = "aborted"
		return t.otx.End(ctx, ocp.Result{})
	}
	if err := t.start(); err != nil {
		return err
	}
	if t.raw != nil {
		var err error
		if t.adaptive(ocpsmtp.PartRAWDATA, t.rawData) {
			err = t.message(ctx)
		} else {
			err = t.annotateOnly(ctx)
		}
		if err != nil {
			return err
		}
	}
	if len(t.insts) > 0 && t.result != "refused" {
		if err := t.parts(ctx); err != nil {
			return err
		}
	}
	if err := t.otx.EndMessage(ocp.Result{}); err != nil {
		return err
	}
	t.done = true
	// Nothing is left to do: end the transaction now rather than wait
	// for the processor's TE, which then needs no answer (docs/profile.md
	// 3, "Ending the original flow").
	return t.otx.End(ctx, ocp.Result{})
}

// adaptRaw hands the spooled RAWDATA to the chain and returns the message
// with the chain's decision; the caller closes the message.
func (t *txn) adaptRaw(ctx context.Context) (*Message, Decision, error) {
	sp := t.raw
	t.raw = nil
	msg, err := sp.Message()
	if err != nil {
		return nil, Decision{}, err
	}
	t.messageID = messageID(msg)
	dec, err := t.chain.AdaptMessage(ctx, t.tx, msg)
	if err != nil {
		msg.Close()
		return nil, Decision{}, err
	}
	return msg, dec, nil
}

// message runs the chain on the spooled RAWDATA and sends the answer.
func (t *txn) message(ctx context.Context) error {
	msg, dec, err := t.adaptRaw(ctx)
	if err != nil {
		return err
	}
	defer msg.Close()
	d := t.rawData
	if dec.Action == ActionRefuse {
		if !d.Allows(ocpsmtp.AllowSMTPError) {
			return fmt.Errorf("callout: message refused by %s, but the processor does not allow SMTP-Error", t.tx.Service)
		}
		t.result = "refused"
		t.tx.Logger.Info("message refused", t.decided(dec, "reply", dec.Reply.String())...)
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
		t.tx.Logger.Info("message replaced", t.reason(dec, "adapted_size", out.Size())...)
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

// annotateOnly runs the chain on informative RAWDATA: the message cannot
// change, but header fields and advice may still be sent in annotation
// DUMs when the processor allowed them (docs/profile.md, section 6). The
// services run either way: they were named in our AMS as acting.
func (t *txn) annotateOnly(ctx context.Context) error {
	d := t.rawData
	msg, dec, err := t.adaptRaw(ctx)
	if err != nil {
		return err
	}
	defer msg.Close()
	if dec.Action != ActionKeep {
		t.tx.Logger.Warn("RAWDATA is informative: decision not carried out", "action", dec.Action.String(), "reason", dec.Reason)
		if dec.Message != nil {
			dec.Message.Close()
		}
		if dec.Action == ActionRefuse {
			return nil
		}
	}
	first, rest := t.annotations(d, dec)
	if len(first) > 0 {
		params := append(ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}.Params(), first...)
		if _, err := t.otx.Send(ctx, params, []byte{}); err != nil {
			return err
		}
	}
	return t.annotate(ctx, ocpsmtp.PartRAWDATA, rest)
}

// sendMessage sends m as RAWDATA DUMs; the first carries first.
func (t *txn) sendMessage(ctx context.Context, m *Message, first []ocp.Param) error {
	r := m.NewReader()
	// Send does not keep the payload, so one buffer serves every chunk;
	// a small message needs no more than its size.
	buf := make([]byte, min(int64(sendChunk), m.Size()+1))
	params := append(ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}.Params(), first...)
	sent := false
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 || !sent {
			if _, err := t.otx.Send(ctx, params, buf[:n]); err != nil {
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
