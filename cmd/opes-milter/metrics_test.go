package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsEndpoint: /metrics and /healthz always, Go's profiles only
// with pprof on.
func TestMetricsEndpoint(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		addr, stop, err := serveMetrics("127.0.0.1:0", newRegistry(), probes{healthy: func() bool { return true }}, pprof, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		get := func(path string) (int, string) {
			resp, err := http.Get("http://" + addr.String() + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
			t.Errorf("pprof=%v: /metrics %d", pprof, code)
		}
		if code, body := get("/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("pprof=%v: /healthz %d %q", pprof, code, body)
		}
		if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "opes_milter_build_info{goversion=\"go") {
			t.Errorf("no opes_milter_build_info:\n%s", body)
		}
		if code, body := get("/livez"); code != 200 || body != "ok\n" {
			t.Errorf("/livez %d %q", code, body)
		}
		if code, body := get("/readyz"); code != 200 || body != "{\"status\":\"ready\"}\n" {
			t.Errorf("/readyz %d %q", code, body)
		}
		code, body := get("/debug/pprof/goroutine?debug=1")
		if pprof && (code != 200 || !strings.Contains(body, "goroutine profile")) {
			t.Errorf("pprof on: /debug/pprof/goroutine %d", code)
		}
		if !pprof && code != http.StatusNotFound {
			t.Errorf("pprof off: /debug/pprof/goroutine %d, want 404", code)
		}
		stop()
	}
}
