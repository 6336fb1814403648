package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/internal/syncbuf"
	"github.com/opes-milter/opes-milter/mapping"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveCalloutAt serves the [callout] services of text on addr until the
// returned stop is called.
func serveCalloutAt(t *testing.T, text, addr string) (stop func()) {
	t.Helper()
	cfg, err := mapping.Load("callout.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	services, err := builtin.NewServices(cfg.Callout)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &callout.Server{Services: services}
	go srv.Serve(ln)
	return func() { srv.Close() }
}

// httpGet returns the status and body of http://addr/path (status 0 and
// the error when it failed).
func httpGet(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyz: with no mail flowing, /readyz answers 200 once the callout
// server negotiated, 503 naming the chain and server once it is stopped,
// and 200 again after it restarts; /livez and /healthz answer 200 all
// along.
func TestReadyz(t *testing.T) {
	base := contribFor(t)
	calloutAddr, metricsAddr := freeAddr(t), freeAddr(t)
	text := strings.Replace(base, `addresses = ["127.0.0.1:8891"]`, `addresses = ["`+calloutAddr+`"]`, 1)
	text = strings.Replace(text, `revival_delay = "30s"`, `revival_delay = "1s"`, 1)
	text = strings.Replace(text, `metrics_listen = ""`, `metrics_listen = "`+metricsAddr+`"`, 1)
	path := writeTemp(t, "c.toml", text)

	stop := serveCalloutAt(t, base, calloutAddr)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "-config", path}, logs, logs) }()
	defer func() {
		cancel()
		stop()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("did not stop")
		}
	}()

	get := func(p string) (int, string) { return httpGet(metricsAddr, p) }
	// await polls path until it answers code (bounded: the probe interval
	// is 2s, the breaker's revival delay 1s).
	await := func(p string, code int, body string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			c, b := get(p)
			if c == code && strings.Contains(b, body) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d %q, want %d with %q\nlogs:\n%s", p, c, b, code, body, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	await("/readyz", 200, `{"status":"ready"}`)
	await("/livez", 200, "ok")

	stop()
	await("/readyz", 503, `{"status":"not ready","chains":[{"chain":"default","ready":false,"servers":[{"server_set":"local","server":"`+calloutAddr+`","ready":false,"error":"`)
	if c, _ := get("/livez"); c != 200 {
		t.Errorf("/livez %d while a callout server is down", c)
	}
	if c, _ := get("/healthz"); c != 200 {
		t.Errorf("/healthz %d while a callout server is down", c)
	}

	stop = serveCalloutAt(t, base, calloutAddr)
	await("/readyz", 200, `{"status":"ready"}`)
}

// TestUnreachableAtStart: a server set no server of which can be reached
// when the daemon starts is logged as a warning, and /readyz says so.
func TestUnreachableAtStart(t *testing.T) {
	base := contribFor(t)
	calloutAddr, metricsAddr := freeAddr(t), freeAddr(t)
	text := strings.Replace(base, `addresses = ["127.0.0.1:8891"]`, `addresses = ["`+calloutAddr+`"]`, 1)
	text = strings.Replace(text, `metrics_listen = ""`, `metrics_listen = "`+metricsAddr+`"`, 1)
	path := writeTemp(t, "c.toml", text)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "-config", path}, logs, logs) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "level=WARN msg=\"no callout server of the chain is ready at start") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "server.addr="+calloutAddr) || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("the warning does not name the server and why:\n%s", logs.String())
	}
	resp, err := http.Get("http://" + metricsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("/readyz %d, want 503", resp.StatusCode)
	}
}

// TestRunLocal: run -local serves the [callout] services in process: with
// nothing listening on the server set's address /readyz says ready, and
// /metrics has opes-callout's families beside opes-milter's. A file
// without a [callout] table is refused.
func TestRunLocal(t *testing.T) {
	base := contribFor(t)
	calloutAddr, metricsAddr, milterAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	text := strings.Replace(base, `addresses = ["127.0.0.1:8891"]`, `addresses = ["`+calloutAddr+`"]`, 1)
	text = strings.Replace(text, `metrics_listen = ""`, `metrics_listen = "`+metricsAddr+`"`, 1)
	text = strings.Replace(text, `listen = ["inet:127.0.0.1:8890"]`, `listen = ["inet:`+milterAddr+`"]`, 1)
	path := writeTemp(t, "c.toml", text)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"run", "-local", "-config", path}, logs, logs) }()
	defer func() { cancel(); <-done }()

	get := func(p string) (int, string) { return httpGet(metricsAddr, p) }
	deadline := time.Now().Add(15 * time.Second)
	for c, b := get("/readyz"); c != 200; c, b = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %q\nlogs:\n%s", c, b, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, m := get("/metrics")
	for _, family := range []string{"opes_callout_transactions_total", "opes_callout_service_calls_total", "opes_milter_messages_total"} {
		if !strings.Contains(m, family) {
			t.Errorf("/metrics lacks %s", family)
		}
	}

	noCallout := writeTemp(t, "m.toml", text[:strings.Index(text, "\n[callout]")])
	var out syncbuf.Buffer
	if code := run(context.Background(), []string{"run", "-local", "-config", noCallout}, &out, &out); code != 1 ||
		!strings.Contains(out.String(), "-local needs a [callout] table") {
		t.Errorf("run -local without [callout]: exit %d, %q", code, out.String())
	}
}
