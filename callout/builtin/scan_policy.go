package builtin

import (
	"strings"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// finding is what a scanner reported about a message.
type finding struct {
	// Signature names it (clamd's signature, ICAP's Threat).
	Signature string
	// Oversize reports a limit that stopped the scan: the outcome is
	// ScanPolicy.OnOversize instead of OnVirus.
	Oversize bool
}

// scanPolicy turns a scanner's verdict into a decision, the same way for
// every scanner kind (mapping.ScanPolicy).
type scanPolicy struct {
	p     mapping.ScanPolicy
	reply callout.Reply
}

func newScanPolicy(p mapping.ScanPolicy) (scanPolicy, error) {
	sp := scanPolicy{p: p, reply: callout.Reply{Code: p.Reply.Code, Text: p.Reply.Text}}
	if sp.reply.Code == 0 {
		sp.reply = callout.Reply{Code: 554, Text: "5.7.1 Message refused: {signature} found"}
	}
	probe := sp.reply
	probe.Text = strings.ReplaceAll(probe.Text, "{signature}", "X")
	return sp, probe.Validate()
}

// clean is the decision for a message the scanner found nothing in: kept,
// with the verdict header.
func (sp scanPolicy) clean(engine string) callout.Decision {
	d := callout.Keep().Because("clean")
	if sp.p.VerdictHeader != "" {
		d = d.WithHeader(sp.p.VerdictHeader, "clean ("+engine+")")
	}
	return d
}

// found is the decision for a finding. Every outcome is logged with the
// queue id; a quarantined message gets the quarantine header with the
// reason, which the MTA's own tools show (postcat -q, the qf file).
func (sp scanPolicy) found(tx *callout.Tx, engine string, f finding) callout.Decision {
	outcome := sp.p.OnVirus
	kind := "virus"
	if f.Oversize {
		outcome, kind = sp.p.OnOversize, "scan limit"
	}
	reason := kind + " " + f.Signature + " found by " + engine + " (service " + tx.Service + ")"
	tx.Log().Warn("scanner finding", "outcome", outcome, "signature", f.Signature, "oversize", f.Oversize,
		"engine", engine, "queue_id", tx.Opt(ocpsmtp.OptQueueID), "reason", reason)
	verdict := func(d callout.Decision) callout.Decision {
		if sp.p.VerdictHeader != "" {
			d = d.WithHeader(sp.p.VerdictHeader, "infected: "+f.Signature+" ("+engine+")")
		}
		return d
	}
	switch outcome {
	case mapping.ScanQuarantine:
		d := verdict(callout.Keep()).WithAdvice(ocpsmtp.AdviceQuarantine).Because(reason)
		if sp.p.QuarantineHeader != "" {
			d = d.WithHeader(sp.p.QuarantineHeader, reason)
		}
		return d
	case mapping.ScanDiscard:
		return callout.Keep().WithAdvice(ocpsmtp.AdviceDiscard).Because(reason)
	case mapping.ScanTag:
		return verdict(callout.Keep()).Because(reason)
	}
	r := sp.reply
	r.Text = strings.ReplaceAll(r.Text, "{signature}", f.Signature)
	if r.Validate() != nil {
		r.Text = strings.ReplaceAll(sp.reply.Text, "{signature}", "a virus")
	}
	return callout.RefuseWith(r).Because(reason)
}
