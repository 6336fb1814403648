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
		headers = headers[1:]
	}
	return params, headers
}

// annotate sends one annotation DUM (empty payload, one Add-Header) per
// field.
func (t *txn) annotate(ctx context.Context, part ocpsmtp.Part, fields []Field) error {
	for _, f := range fields {
		if _, err := t.otx.Send(ctx, ocpsmtp.Data{Part: part, AddHeader: f.String()}.Params(), []byte{}); err != nil {
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

// start sends our AMS once.
func (t *txn) start() error {
	if t.started {
		return nil
	}
	t.started = true
	return t.otx.StartMessage()
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
