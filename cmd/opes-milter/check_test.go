package main

import (
	"net"

	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/mapping"
)

// contribFor returns contrib/opes-milter.toml with the milter listening on
// a free loopback port (so a run that wrongly starts does not collide).
func contribFor(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(contrib)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), `listen = ["inet:127.0.0.1:8890"]`, `listen = ["inet:127.0.0.1:0"]`, 1)
	if text == string(data) {
		t.Fatal("contrib/opes-milter.toml no longer listens on inet:127.0.0.1:8890")
	}
	return text
}

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunRefusalsAreCheckRefusals: every file run refuses, check refuses
// with the same message (one validation path).
func TestRunRefusalsAreCheckRefusals(t *testing.T) {
	base := contribFor(t)
	callout := base[strings.Index(base, "\n[callout]"):]
	for _, tt := range []struct{ name, text, want string }{
		{"empty file", "", "no routes"},
		{"only [callout]", callout, "no routes"},
		{"unknown key", strings.Replace(base, "max_sessions = ", "max_sesions = ", 1), "milter.max_sesions: unknown key"},
		{"syntax", base + "\n[[routes\n", "to end table name"},
		{"undefined chain", strings.Replace(base, `chain = "default"`, `chain = "nope"`, 1), "routes[0].chain"},
		{"unreadable TLS file", base + "\n[servers.local.tls]\nca_file = \"/nonexistent/ca.pem\"\n", "/nonexistent/ca.pem"},
		{"missing command program", base + "\n[callout.services.spam]\nuri = \"urn:spam\"\nkind = \"command\"\nargv = [\"/nonexistent/spamc\"]\n", "no such executable program"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "c.toml", tt.text)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a run that wrongly starts stops at once
			var runOut, runErr, chkOut, chkErr bytes.Buffer
			if code := run(ctx, []string{"run", "-config", path}, &runOut, &runErr); code != 1 {
				t.Fatalf("run: exit %d, want 1\n%s", code, runErr.String())
			}
			if !strings.Contains(runErr.String(), tt.want) {
				t.Errorf("run said %q, want %q", runErr.String(), tt.want)
			}
			if code := run(context.Background(), []string{"check", "-config", path}, &chkOut, &chkErr); code != 1 {
				t.Fatalf("check: exit %d, want 1 (run refused: %s)\n%s", code, runErr.String(), chkOut.String())
			}
			if chkErr.String() != runErr.String() {
				t.Errorf("check said\n%s\nrun said\n%s", chkErr.String(), runErr.String())
			}
		})
	}
}

// TestCheckComparesCallout: with a [callout] table, a chain's service URI
// that no callout service offers, and a route that does not offer what a
// service adapts, are named with file:line:key.
func TestCheckComparesCallout(t *testing.T) {
	base := contribFor(t)
	lineOf := func(text, s string) string {
		return strconv.Itoa(1 + strings.Count(text[:strings.Index(text, s)], "\n"))
	}
	changed := strings.Replace(base, `uri = "http://opes-milter.example/services/header-tag"`, `uri = "http://opes-milter.example/services/header-tags"`, 1)
	noRcpt := strings.Replace(base, `adaptive = ["RCPT", "RAWDATA"]`, `adaptive = ["RAWDATA"]`, 1)
	for _, tt := range []struct{ name, text, want string }{
		{"changed URI", changed, ":" + lineOf(changed, "services/header-tags") + `: services.header-tag.uri: "http://opes-milter.example/services/header-tags" is offered by no [callout.services] table`},
		{"part not adaptive", noRcpt, ":" + lineOf(noRcpt, `adaptive = ["RAWDATA"]`) + `: routes[0].adaptive: route "inbound" does not offer RCPT as adaptive, which service "recipient-policy" (callout.services.recipient-policy, recipient-policy) adapts`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "c.toml", tt.text)
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"check", "-config", path}, &out, &errb); code != 1 {
				t.Fatalf("check: exit %d, want 1\n%s", code, out.String())
			}
			if want := path + tt.want; !strings.Contains(errb.String(), want) {
				t.Errorf("check said\n%s\nwant\n%s", errb.String(), want)
			}
		})
	}
}

// startCallout serves the [callout] services of the configuration text on
// a loopback port in process and returns the address.
func startCallout(t *testing.T, text string) string {
	t.Helper()
	cfg, err := mapping.Load("callout.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	services, err := builtin.NewServices(cfg.Callout)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &callout.Server{Services: services}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestCheckProbe: check -probe negotiates every chain with every server
// and names what a server refused: an unknown service by its configured
// name, an unreachable server by its error.
func TestCheckProbe(t *testing.T) {
	base := contribFor(t)
	good := startCallout(t, base)
	// A server still running an older file without the header-tag URI.
	stale := startCallout(t, strings.Replace(base, `uri = "http://opes-milter.example/services/header-tag"
kind`, `uri = "http://opes-milter.example/services/header-tag-v0"
kind`, 1))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	ln.Close()

	for _, tt := range []struct {
		name  string
		addrs string
		code  int
		want  []string
	}{
		{"accepted", `"` + good + `"`, 0, []string{
			`server set "local", server ` + good + `, chain "default": accepted: http://iana.org/opes/ocp/SMTP/receiver, adaptive RCPT RAWDATA, informative IP HELO MAIL`,
		}},
		{"refused and down", `"` + stale + `", "` + down + `"`, 1, []string{
			`server set "local", server ` + stale + `, chain "default": FAILED: the callout server refused service "header-tag" (http://opes-milter.example/services/header-tag): ocp: negotiation for service group 1 failed: no feature selected`,
			`server set "local", server ` + down + `, chain "default": FAILED: `,
			"connection refused",
			"probe: 2 of 2 negotiations failed",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "c.toml", strings.Replace(base, `addresses = ["127.0.0.1:8891"]`, "addresses = ["+tt.addrs+"]", 1))
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"check", "-probe", "-config", path}, &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String()+errb.String(), w) {
					t.Errorf("output lacks %q:\n%s%s", w, out.String(), errb.String())
				}
			}
		})
	}
}

// TestCheckProbeDespiteMismatch: with -probe the servers are asked even
// when the file's two sides disagree, and both findings are reported.
func TestCheckProbeDespiteMismatch(t *testing.T) {
	base := contribFor(t)
	addr := startCallout(t, base)
	text := strings.Replace(base, `addresses = ["127.0.0.1:8891"]`, `addresses = ["`+addr+`"]`, 1)
	text = strings.Replace(text, `uri = "http://opes-milter.example/services/header-tag"`, `uri = "http://opes-milter.example/services/header-tagz"`, 1)
	path := writeTemp(t, "c.toml", text)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "-probe", "-config", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	all := out.String() + errb.String()
	for _, want := range []string{
		`services.header-tag.uri: "http://opes-milter.example/services/header-tagz" is offered by no [callout.services] table`,
		`FAILED: the callout server refused service "header-tag" (http://opes-milter.example/services/header-tagz)`,
		"probe: 1 of 1 negotiations failed",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}
}
