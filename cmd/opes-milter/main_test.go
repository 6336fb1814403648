package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/internal/syncbuf"
	"github.com/opes-milter/opes-milter/mapping"
)

const contrib = "../../contrib/opes-milter.toml"

func TestCheck(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"check", "-config", contrib}, &out, &errs); code != 0 {
		t.Fatalf("check contrib: exit %d\n%s", code, errs.String())
	}
	if !strings.Contains(out.String(), `route 1 "inbound"`) {
		t.Errorf("check printed no routes:\n%s", out.String())
	}

	data, err := os.ReadFile(contrib)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "max_sessions = ", "max_sesions = ", 1)
	line := 1 + strings.Count(bad[:strings.Index(bad, "max_sesions")], "\n")
	path := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errs.Reset()
	if code := run(context.Background(), []string{"check", "-config", path}, &out, &errs); code != 1 {
		t.Fatalf("check with a misspelt key: exit %d", code)
	}
	want := path + ":" + strconv.Itoa(line) + ": milter.max_sesions: unknown key"
	if !strings.Contains(errs.String(), want) {
		t.Fatalf("stderr %q lacks %q", errs.String(), want)
	}
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		code   int
		output string
	}{
		{nil, 2, "usage: opes-milter COMMAND"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"try", "-config", contrib}, 2, "missing MESSAGE"},
		{[]string{"check", "-config", contrib, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", "-h"}, 0, "usage: opes-milter run [flags]"},
		{[]string{"run", "--help"}, 0, "usage: opes-milter run [flags]"},
		{[]string{"help", "try"}, 0, "usage: opes-milter try [flags] MESSAGE"},
		{[]string{"help", "check"}, 0, "(default \"/etc/opes-milter/opes-milter.toml\")"},
		{[]string{"--version"}, 0, "opes-milter "},
		{[]string{"version"}, 0, "opes-milter "},
		{[]string{"help", "-man"}, 0, ".SH NAME\nopes\\-milter \\- "},
	} {
		var out, errs bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errs)
		if code != tt.code || !strings.Contains(out.String()+errs.String(), tt.output) {
			t.Errorf("%q: exit %d, output %q; want %d and %q", tt.args, code, out.String()+errs.String(), tt.code, tt.output)
		}
	}
}

// TestTry runs a message through a real opes-callout server (in-process)
// configured from contrib/opes-milter.toml and checks the printed actions.
func TestTry(t *testing.T) {
	cfg, err := mapping.LoadFile(contrib)
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

	data, _ := os.ReadFile(contrib)
	text := strings.ReplaceAll(string(data), "127.0.0.1:8891", ln.Addr().String())
	dir := t.TempDir()
	path := filepath.Join(dir, "try.toml")
	os.WriteFile(path, []byte(text), 0o600)
	eml := filepath.Join(dir, "m.eml")
	os.WriteFile(eml, []byte("From: a@example.org\nSubject: try\n\nhello\n"), 0o600)

	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"try", "-config", path, "-rcpt", "blocked@example.com", "-rcpt", "friend@example.com", eml}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	got := out.String()
	for _, want := range []string{
		"rcpt <blocked@example.com> reject 550 5.1.1",
		"rcpt <friend@example.com> continue",
		"insert header    1 OPES-System: http://opes.example.net/opes-milter",
		"add header       X-OPES-Tag: tagged by opes-callout",
		"replace body", // the disclaimer
		"end of message   accept",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func waitLog(t *testing.T, logs *syncbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runDaemon starts run with args (plus -config) on a copy of contrib
// listening on a free port, once it says it started. It returns the file's
// path and text, the logs, and stop, which ends the daemon and returns its
// exit status.
func runDaemon(t *testing.T, args ...string) (path, text string, logs *syncbuf.Buffer, stop func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data, _ := os.ReadFile(contrib)
	text = strings.ReplaceAll(string(data), "inet:127.0.0.1:8890", "inet:"+addr)
	path = filepath.Join(t.TempDir(), "run.toml")
	os.WriteFile(path, []byte(text), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs = &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(append([]string{"run"}, args...), "-config", path), logs, logs) }()
	waitLog(t, logs, "opes-milter started")
	return path, text, logs, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(40 * time.Second):
			t.Fatal("did not stop")
			return -1
		}
	}
}

// TestRunReloadAndStop starts the daemon, reloads a valid and an invalid
// configuration with SIGHUP and stops it.
func TestRunReloadAndStop(t *testing.T) {
	path, text, logs, stop := runDaemon(t)

	os.WriteFile(path, []byte(strings.Replace(text, "opes.example.net/opes-milter", "opes.example.net/reloaded", 1)), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, logs, "configuration reloaded")

	os.WriteFile(path, []byte(text+"\nbogus = 1\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, logs, "reload failed; keeping the running configuration")
	if !strings.Contains(logs.String(), "bogus: unknown key") {
		t.Errorf("the reload error does not name the key:\n%s", logs.String())
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, logs.String())
	}
}

// TestRunLocalReload: with -local, SIGHUP reloads the in-process services
// with the routes; a file without its [callout] table is refused and the
// running configuration kept; the daemon stops cleanly.
func TestRunLocalReload(t *testing.T) {
	path, text, logs, stop := runDaemon(t, "-local")

	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, logs, "configuration reloaded")
	if !strings.Contains(logs.String(), "services reloaded") {
		t.Errorf("the in-process services were not reloaded:\n%s", logs.String())
	}

	os.WriteFile(path, []byte(text[:strings.Index(text, "\n[callout]")]), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, logs, "reload failed; keeping the running configuration")
	if !strings.Contains(logs.String(), "-local needs a [callout] table") {
		t.Errorf("the reload error does not say why:\n%s", logs.String())
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, logs.String())
	}
}
