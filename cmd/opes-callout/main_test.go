package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/internal/syncbuf"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

const testConfig = `
[callout]
listen = ["127.0.0.1:0"]
metrics_listen = "127.0.0.1:0"
pprof = true
log_level = "debug"

[callout.services.policy]
uri = "http://opes-milter.example/services/recipient-policy"
kind = "recipient-policy"
deny = ["blocked@example.com"]
reply = "550 5.1.1 Recipient address rejected: blocked by policy"

[callout.services.tag]
uri = "http://opes-milter.example/services/header-tag"
kind = "header-tag"
headers = { "X-OPES-Tag" = "tagged by opes-callout" }
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "opes-callout.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRun starts the daemon, runs one transaction through it as a
// processor would (a refused and an accepted recipient, then the
// message), reads the metrics and stops it.
func TestRun(t *testing.T) {
	path := writeConfig(t, testConfig)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan listening, 1)
	done := make(chan error, 1)
	logs := &syncbuf.Buffer{}
	go func() { done <- cmdRun(ctx, path, logs, nil, ready) }()
	var up listening
	select {
	case up = <-ready:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening after 10s")
	}

	offer := ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI,
		Adaptive:    []ocpsmtp.Part{ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA},
		Informative: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL}}
	p := ocptest.Dial(t, up.ocp[0].String(), ocp.ClientConfig{}, []string{
		"http://opes-milter.example/services/recipient-policy",
		"http://opes-milter.example/services/header-tag"}, offer)
	send := p.Send
	recv := func() *ocp.Message {
		m, err := p.Recv()
		if err != nil {
			t.Fatalf("recv: %v\n%s", err, logs)
		}
		return m
	}
	send(ocpsmtp.PartIP, "192.0.2.1")
	send(ocpsmtp.PartHELO, "mail.example.org")
	send(ocpsmtp.PartMAIL, "<alice@example.org>")
	send(ocpsmtp.PartRCPT, "<blocked@example.com>")
	if m := recv(); m.Name != ocp.MsgDUM || !strings.Contains(string(ocp.AppendMessage(nil, m)), "550 5.1.1 Recipient address rejected: blocked by policy") {
		t.Fatalf("blocked recipient: %q", ocp.AppendMessage(nil, m))
	}
	send(ocpsmtp.PartRCPT, "<bob@example.com>")
	if m := recv(); m.Name != ocp.MsgDUY {
		t.Fatalf("accepted recipient: %q", ocp.AppendMessage(nil, m))
	}
	send(ocpsmtp.PartRAWDATA, "Subject: hi\r\n\r\nhello\r\n")
	p.EndMessage()
	m := recv()
	if want := "Add-Header: \"34:X-OPES-Tag: tagged by opes-callout\""; m.Name != ocp.MsgDUY || !strings.Contains(string(ocp.AppendMessage(nil, m)), want) {
		t.Fatalf("message answer: %q", ocp.AppendMessage(nil, m))
	}
	if m := recv(); m.Name != ocp.MsgAME {
		t.Fatalf("want AME, got %q", ocp.AppendMessage(nil, m))
	}
	p.End()

	resp, err := http.Get("http://" + up.metrics.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `opes_callout_service_calls_total{part="RCPT",service="policy",verdict="reject"} 1`) || !strings.Contains(string(body), `opes_callout_build_info{goversion=`) {
		t.Errorf("metrics:\n%s", body)
	}
	for _, p := range []string{"/livez", "/readyz", "/healthz"} {
		if resp, err := http.Get("http://" + up.metrics.String() + p); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %v %v", p, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	if resp, err := http.Get("http://" + up.metrics.String() + "/debug/pprof/goroutine?debug=1"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("pprof = true, but /debug/pprof/goroutine: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	p.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop within 10s")
	}
	if !strings.Contains(logs.String(), "transaction done") || !strings.Contains(logs.String(), "stopped") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestCommandLine(t *testing.T) {
	good := writeConfig(t, testConfig)
	bad := writeConfig(t, testConfig+"\n[callout.services.x]\nuri = \"urn:x\"\nkind = \"teleport\"\n")
	noCallout := writeConfig(t, "")
	tests := []struct {
		args   []string
		status int
		out    string
	}{
		{nil, 2, "usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"check", "-config", good, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", "-h"}, 0, "-config file"},
		{[]string{"run", "--help"}, 0, "/etc/opes-milter/opes-milter.toml"},
		{[]string{"help", "check"}, 0, "usage: opes-callout check [flags]"},
		{[]string{"--version"}, 0, "opes-callout "},
		{[]string{"check", "-config", good}, 0, "policy"},
		{[]string{"check", "-config", bad}, 1, "teleport"},
		{[]string{"check", "-config", noCallout}, 1, "no [callout] table"},
		{[]string{"run", "-config", filepath.Join(t.TempDir(), "missing.toml")}, 1, "no such file"},
		{[]string{"help"}, 0, "usage"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		status := run(context.Background(), tt.args, &out, &errb)
		if status != tt.status || !strings.Contains(out.String()+errb.String(), tt.out) {
			t.Errorf("%q: status %d, output %q; want %d and %q", tt.args, status, out.String()+errb.String(), tt.status, tt.out)
		}
	}
}

// TestRunRefusalsAreCheckRefusals: every file run refuses, check refuses
// with the same message (one validation path).
func TestRunRefusalsAreCheckRefusals(t *testing.T) {
	for _, tt := range []struct{ name, text, want string }{
		{"empty file", "", "no [callout] table"},
		{"unknown kind", testConfig + "\n[callout.services.x]\nuri = \"urn:x\"\nkind = \"teleport\"\n", "teleport"},
		{"missing program", testConfig + "\n[callout.services.x]\nuri = \"urn:x\"\nkind = \"command\"\nargv = [\"/nonexistent/spamc\"]\n", "no such executable program"},
		{"unreadable TLS files", testConfig + "\n[callout.tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n", "/nonexistent/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var runOut, runErr, chkOut, chkErr bytes.Buffer
			if code := run(ctx, []string{"run", "-config", path}, &runOut, &runErr); code != 1 || !strings.Contains(runErr.String(), tt.want) {
				t.Fatalf("run: exit %d, %q; want 1 and %q", code, runErr.String(), tt.want)
			}
			if code := run(context.Background(), []string{"check", "-config", path}, &chkOut, &chkErr); code != 1 || chkErr.String() != runErr.String() {
				t.Errorf("check: exit %d, %q; run said %q", code, chkErr.String(), runErr.String())
			}
		})
	}
}
