package bridge_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opes-milter/opes-milter/bridge"
)

func TestMetrics(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	reg := prometheus.NewRegistry()
	m := startMilter(t, p, bridge.WithMetrics(bridge.NewMetrics(reg)))
	s := m.session(t)
	_, _, final := sendMessage(t, s, "a@example.org", []string{"blocked@example.com", "b@example.com"}, "x\r\n")
	wantFinal(t, final, ActionAccept)
	want := `
# HELP opes_milter_messages_total Messages that reached end of message, by route, verdict (accept, reject, tempfail, discard, quarantine) and trace status (adapted, unadapted, bypassed, skipped).
# TYPE opes_milter_messages_total counter
opes_milter_messages_total{route="inbound",status="adapted",verdict="accept"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "opes_milter_messages_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(gaugeOf(t, reg, "opes_milter_ocp_connections")); n != 1 {
		t.Fatalf("ocp connections = %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "opes_milter_callout_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("callout histogram series = %d, %v", n, err)
	}
}

// gaugeOf finds a registered gauge by name through a gather.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
