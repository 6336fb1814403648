package bridge_test

import (
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

	// Every labelled series exists at 0 before the first event.
	for _, tt := range []struct {
		name   string
		labels map[string]string
	}{
		{"opes_milter_messages_total", map[string]string{"route": "inbound", "verdict": "accept", "status": "adapted"}},
		{"opes_milter_messages_total", map[string]string{"route": "", "verdict": "tempfail", "status": "failed"}},
		{"opes_milter_adaptation_failures_total", map[string]string{"route": "inbound", "class": "connect", "action": "tempfail"}},
		{"opes_milter_adaptation_failures_total", map[string]string{"route": "inbound", "class": "local", "action": "tempfail"}},
		{"opes_milter_circuit_breaker_open", map[string]string{"server": co.Addr}},
		{"opes_milter_circuit_breaker_trips_total", map[string]string{"server": co.Addr}},
		{"opes_milter_overload_refusals_total", map[string]string{"limit": "sessions"}},
		{"opes_milter_overload_refusals_total", map[string]string{"limit": "transactions"}},
		{"opes_milter_rcpt_refusals_total", map[string]string{"route": "inbound", "verdict": "reject"}},
		{"opes_milter_sessions", nil},
		{"opes_milter_milter_sessions", nil},
	} {
		if v, ok := seriesValue(t, reg, tt.name, tt.labels); !ok || v != 0 {
			t.Errorf("%s%v = %v, %v; want 0 from the start", tt.name, tt.labels, v, ok)
		}
	}

	s := m.session(t)
	_, _, final := sendMessage(t, s, "a@example.org", []string{"blocked@example.com", "b@example.com"}, "x\r\n")
	wantFinal(t, final, ActionAccept)
	if v, _ := seriesValue(t, reg, "opes_milter_messages_total", map[string]string{"route": "inbound", "verdict": "accept", "status": "adapted"}); v != 1 {
		t.Errorf("messages_total adapted accept = %v", v)
	}
	if v, _ := seriesValue(t, reg, "opes_milter_rcpt_refusals_total", map[string]string{"route": "inbound", "verdict": "reject"}); v != 1 {
		t.Errorf("rcpt_refusals_total reject = %v, want 1 (blocked@example.com)", v)
	}
	if n := testutil.ToFloat64(gaugeOf(t, reg, "opes_milter_ocp_connections")); n != 1 {
		t.Fatalf("ocp connections = %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "opes_milter_callout_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("callout histogram series = %d, %v", n, err)
	}
}

// seriesValue returns the value of the series of family name with exactly
// labels (a counter's, gauge's or histogram's count).
func seriesValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
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
