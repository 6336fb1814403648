package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// floodScript answers the processor's AME like a hostile server: n
// Add-Header answers of size bytes, n added recipients, or an adapted
// RAWDATA of size bytes sent in 64 KiB DUMs; then the rest of a normal
// answer.
func floodScript(kind string, n, size int) func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
	base := scriptServer(ocptest.Answers{})
	return func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
		if m.Name != ocp.MsgAME {
			return base(ctx, tx, m)
		}
		switch kind {
		case "headers":
			value := strings.Repeat("h", size)
			for i := range n {
				if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, AddHeader: fmt.Sprintf("X-Flood-%d: %s", i, value)}.Params(), []byte{}); err != nil {
					return nil // the processor ended the transaction
				}
			}
		case "recipients":
			for i := range n {
				if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRCPT}.Params(), fmt.Appendf(nil, "<added%d@example.com>", i)); err != nil {
					return nil
				}
			}
		case "body":
			head := []byte("Subject: adapted\r\n\r\n")
			if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}.Params(), head); err != nil {
				return nil
			}
			chunk := bytes.Repeat([]byte("b"), 64<<10)
			for sent := len(head); sent < size; sent += len(chunk) {
				c := chunk[:min(len(chunk), size-sent)]
				if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}.Params(), c); err != nil {
					return nil
				}
			}
			return tx.EndMessage(ocp.Result{Code: 200})
		}
		return base(ctx, tx, m)
	}
}

// TestAnswerLimits: a callout server that asks the MTA for more than the
// limits allow (header changes by count and by bytes, added recipients,
// adapted size) fails the transaction as a protocol failure as the answers
// arrive: the failure policy applies (tempfail by default, accept when
// configured: delivered unadapted) and nothing it asked for reaches the
// MTA.
func TestAnswerLimits(t *testing.T) {
	lim := bridge.AnswerLimits{HeaderChanges: 10, HeaderChangeBytes: 4096, AddedRecipients: 5, AdaptedSize: 1 << 20}
	cases := []struct {
		name    string
		script  func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error
		allowed bool // within the limits: applied
	}{
		{"10 Add-Header within", floodScript("headers", 10, 100), true},
		{"11 Add-Header", floodScript("headers", 11, 10), false},
		{"Add-Header bytes", floodScript("headers", 3, 2000), false},
		{"10000 Add-Header of 50 KB", floodScript("headers", 10000, 50000), false},
		{"5 recipients within", floodScript("recipients", 5, 0), true},
		{"6 recipients", floodScript("recipients", 6, 0), false},
		{"200000 recipients", floodScript("recipients", 200000, 0), false},
		{"adapted 1 MiB within", floodScript("body", 0, 1<<20), true},
		{"adapted 64 MiB", floodScript("body", 0, 64<<20), false},
	}
	for _, pol := range []mapping.Action{mapping.TempFail, mapping.Accept} {
		for _, tc := range cases {
			t.Run(pol.String()+"/"+tc.name, func(t *testing.T) {
				co := startCallout(t, tc.script)
				p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
				p.AnswerLimits = lim
				p.Routes[0].Chain.OnFailure.Protocol = pol
				reg := prometheus.NewRegistry()
				m := startMilter(t, p, bridge.WithMetrics(bridge.NewMetrics(reg)))
				s := m.session(t)
				_, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
				flood := len(findMods(mods, ActionAddRcpt, "")) + len(findModsPrefix(mods, "X-Flood-"))
				if tc.allowed {
					wantFinal(t, final, ActionAccept)
					if flood == 0 && !strings.Contains(tc.name, "adapted") {
						t.Errorf("the answers within the limits were not applied: %+v", mods)
					}
					return
				}
				if pol == mapping.TempFail {
					wantTempfail(t, final)
				} else {
					wantFinal(t, final, ActionAccept)
					sys := findMods(mods, ActionInsertHeader, "OPES-System")
					if len(sys) != 1 || !strings.Contains(sys[0].HeaderValue, "status=unadapted") {
						t.Errorf("not traced unadapted: %+v", sys)
					}
				}
				if flood != 0 || len(findMods(mods, ActionReplaceBody, "")) != 0 {
					t.Errorf("%d changes of the hostile server reached the MTA", flood)
				}
				if got := failureClasses(t, reg); got != "protocol/"+pol.String() {
					t.Errorf("failures counted: %q, want one protocol failure", got)
				}
			})
		}
	}
}

// findModsPrefix returns the header additions whose name starts with prefix.
func findModsPrefix(mods []ModifyAction, prefix string) []ModifyAction {
	var out []ModifyAction
	for _, m := range mods {
		if (m.Type == ActionAddHeader || m.Type == ActionInsertHeader) && strings.HasPrefix(m.HeaderName, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// failureClasses lists the adaptation failures counted, as class/action.
func failureClasses(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "opes_milter_adaptation_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetCounter().GetValue() == 0 {
				continue // every series exists at 0 from the start
			}
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out = append(out, fmt.Sprintf("%s/%s", l["class"], l["action"]))
			if v := m.GetCounter().GetValue(); v != 1 {
				out = append(out, fmt.Sprint(v))
			}
		}
	}
	return strings.Join(out, " ")
}
