package callout_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/promobserver"
)

// reporting is a service whose backend is up or down.
type reporting struct {
	backendDown
	up bool
}

func (r reporting) CheckHealth(context.Context) []callout.BackendHealth {
	return []callout.BackendHealth{{Name: "clamd", Address: "unix:/run/clamav/clamd.ctl", Up: r.up}}
}

// TestHealthWatcher: the watcher asks the services that report health,
// says which are down and exports opes_callout_backend_up per service.
func TestHealthWatcher(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := promobserver.New(reg)
	srv := &callout.Server{Services: map[string]callout.Service{
		"urn:av-up": reporting{up: true}, "urn:av-down": reporting{}, "urn:plain": backendDown{}}}
	w := &callout.HealthWatcher{Server: srv, Observer: m}
	got := w.Check(t.Context())
	if len(got) != 2 {
		t.Fatalf("health of %d services, want the 2 that report it: %+v", len(got), got)
	}
	if down := w.Down(); !slices.Equal(down, []string{"urn:av-down"}) {
		t.Errorf("down %v, want [urn:av-down]", down)
	}
	want := `# HELP opes_callout_backend_up 1 while the backend (scanner) of a service answers its health check, 0 while it is down, by service (its configured name) and backend.
# TYPE opes_callout_backend_up gauge
opes_callout_backend_up{backend="clamd",service="urn:av-down"} 0
opes_callout_backend_up{backend="clamd",service="urn:av-up"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "opes_callout_backend_up"); err != nil {
		t.Error(err)
	}
}
