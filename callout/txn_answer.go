package callout

import (
	"context"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// annotations returns the parameters for the answer to a part (Advice and
// the first header field, as far as the processor allowed them) and the
// header fields left for annotation DUMs.
func (t *txn) annotations(d ocpsmtp.Data, dec Decision) ([]ocp.Param, []Field) {
	var params []ocp.Param
	if dec.Advice != "" {
		if d.Allows(ocpsmtp.AllowAdvice) {
			params = append(params, ocp.NewParam(ocpsmtp.ParamAdvice, ocp.Atom(dec.Advice)))
		} else {
			t.tx.Logger.Warn("processor does not allow Advice here; dropped", "part", string(d.Part), "advice", dec.Advice)
		}
	}
	headers := dec.Headers
	if len(headers) > 0 && !d.Allows(ocpsmtp.AllowAddHeader) {
		t.tx.Logger.Warn("processor does not allow Add-Header here; fields dropped", "part", string(d.Part), "fields", len(headers))
		headers = nil
	}
	if len(headers) > 0 {
		params = append(params, ocp.NewParam(ocpsmtp.ParamAddHeader, ocp.Atom(headers[0].String())))
		if headers[0].Top {
			params = append(params, ocp.NewParam(ocpsmtp.ParamAddHeaderAt, ocp.Atom(ocpsmtp.AddHeaderAtTop)))
		}
		headers = headers[1:]
	}
	return params, headers
}

// annotate sends one annotation DUM (empty payload, one Add-Header) per
// field.
func (t *txn) annotate(ctx context.Context, part ocpsmtp.Part, fields []Field) error {
	for _, f := range fields {
		if _, err := t.otx.Send(ctx, ocpsmtp.Data{Part: part, AddHeader: f.String(), AddHeaderTop: f.Top}.Params(), []byte{}); err != nil {
			return err
		}
	}
	return nil
}

// keep answers a part unchanged: DUY when the processor kept the data,
// an echo DUM otherwise.
func (t *txn) keep(ctx context.Context, part ocpsmtp.Part, off int64, payload []byte, extra []ocp.Param) error {
	if t.kept(off, int64(len(payload))) {
		return t.otx.SendDUY(off, int64(len(payload)), extra...)
	}
	_, err := t.otx.Send(ctx, append(ocpsmtp.Data{Part: part}.Params(), extra...), payload)
	return err
}

func (t *txn) kept(off, size int64) bool {
	koff, ksize, ok := t.otx.Kept()
	return ok && off >= koff && off+size <= koff+ksize
}

// start sends our AMS once. When not every service of the group acts on
// the transaction, it names those that do (Services, docs/profile.md 12),
// so that the processor's OPES-Via does not name a service that never saw
// the content.
func (t *txn) start() error {
	if t.started {
		return nil
	}
	t.started = true
	if t.acting == nil {
		return t.otx.StartMessage()
	}
	return t.otx.StartMessage(ocpsmtp.ServicesParam(t.acting))
}

// actingServices returns the services of the group that act on a
// transaction under the negotiated profile, or nil when all of them do (or
// no profile was negotiated for the group). A service acts when the chain
// calls it: a MailAdapter when MAIL is adaptive, a RcptAdapter when RCPT
// is, a MessageAdapter when a data part is negotiated at all.
func actingServices(group []ocp.Service, chain *Chain, prof *ocpsmtp.Profile) []ocp.Service {
	if prof == nil || len(group) != len(chain.Links) {
		return nil
	}
	data := false
	for _, p := range prof.Parts() {
		data = data || p.Data()
	}
	adaptive := func(p ocpsmtp.Part) bool { a, _ := prof.Has(p); return a }
	acting := []ocp.Service{}
	for i, l := range chain.Links {
		_, mail := l.Service.(MailAdapter)
		_, rcpt := l.Service.(RcptAdapter)
		_, msg := l.Service.(MessageAdapter)
		if mail && adaptive(ocpsmtp.PartMAIL) || rcpt && adaptive(ocpsmtp.PartRCPT) || msg && data {
			acting = append(acting, group[i])
		}
	}
	if len(acting) == len(group) {
		return nil
	}
	return acting
}

func mergeOpts(have, add []ocpsmtp.Opt) []ocpsmtp.Opt {
	for _, o := range add {
		replaced := false
		for i := range have {
			if have[i].Key == o.Key {
				have[i], replaced = o, true
			}
		}
		if !replaced {
			have = append(have, o)
		}
	}
	return have
}
