package promobserver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ObserveCall("urn:a", ocpsmtp.PartRCPT, callout.Refuse(550, "5.1.1 x"), nil, 3*time.Millisecond)
	m.ObserveCall("urn:a", ocpsmtp.PartRCPT, callout.Keep(), nil, 20*time.Millisecond)
	m.ObserveCall("urn:\"b\"", ocpsmtp.PartRAWDATA, callout.Decision{}, errors.New("x"), 2*time.Second)
	m.ObserveTransaction("ok", time.Second)
	want := `
# HELP opes_callout_service_calls_total Service calls by service (its configured name), part and verdict (keep, replace, reject, tempfail, error).
# TYPE opes_callout_service_calls_total counter
opes_callout_service_calls_total{part="RAWDATA",service="urn:\"b\"",verdict="error"} 1
opes_callout_service_calls_total{part="RCPT",service="urn:a",verdict="keep"} 1
opes_callout_service_calls_total{part="RCPT",service="urn:a",verdict="reject"} 1
# HELP opes_callout_transactions_total OCP transactions by result (ok, refused, failed, aborted).
# TYPE opes_callout_transactions_total counter
opes_callout_transactions_total{result="aborted"} 0
opes_callout_transactions_total{result="failed"} 0
opes_callout_transactions_total{result="ok"} 1
opes_callout_transactions_total{result="refused"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "opes_callout_service_calls_total", "opes_callout_transactions_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "opes_callout_service_duration_seconds"); err != nil || n != 2 {
		t.Fatalf("duration series = %d, %v", n, err)
	}

	// With SetServices the label is the configured name, and every part
	// and verdict a service can produce exists at 0 from the start.
	reg = prometheus.NewRegistry()
	m = New(reg)
	m.SetServices(map[string]callout.Service{"urn:a": rcptOnly{}}, map[string]string{"urn:a": "policy"})
	m.ObserveCall("urn:a", ocpsmtp.PartRCPT, callout.Keep(), nil, time.Millisecond)
	want = `
# HELP opes_callout_service_calls_total Service calls by service (its configured name), part and verdict (keep, replace, reject, tempfail, error).
# TYPE opes_callout_service_calls_total counter
opes_callout_service_calls_total{part="RCPT",service="policy",verdict="error"} 0
opes_callout_service_calls_total{part="RCPT",service="policy",verdict="keep"} 1
opes_callout_service_calls_total{part="RCPT",service="policy",verdict="reject"} 0
opes_callout_service_calls_total{part="RCPT",service="policy",verdict="replace"} 0
opes_callout_service_calls_total{part="RCPT",service="policy",verdict="tempfail"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "opes_callout_service_calls_total"); err != nil {
		t.Fatal(err)
	}

	var nilMetrics *Metrics
	nilMetrics.ObserveCall("x", ocpsmtp.PartRCPT, callout.Keep(), nil, 0) // a nil *Metrics records nothing
}

// rcptOnly is a service that adapts recipients only.
type rcptOnly struct{}

func (rcptOnly) Needs() callout.Needs { return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRCPT}} }
func (rcptOnly) AdaptRcpt(context.Context, *callout.Tx, callout.Address) (callout.Decision, error) {
	return callout.Keep(), nil
}
