package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// asMain makes the test binary act as opes-bench, so that "opes-bench
// noop" started by cmdRun (os.Executable) runs this package's code.
const asMain = "OPES_BENCH_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
	}
	os.Exit(m.Run())
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{nil, 2, "usage:"},
		{[]string{"help"}, 0, "opes-bench run"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"load"}, 2, "-addr HOST:PORT is required"},
		{[]string{"load", "-addr", "127.0.0.1:1", "-duration", "0"}, 2, "set -duration or -messages"},
		{[]string{"load", "-addr", "127.0.0.1:1", "-mix", "10XB"}, 2, "bad message mix"},
		{[]string{"load", "-addr", "127.0.0.1:1", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", "-cases", "a,z"}, 2, `unknown case "z"`},
		{[]string{"run", "-runs", "0"}, 2, "must be positive"},
		{[]string{"run", "-bin", "/nonexistent", "-cases", "a"}, 1, "run make build"},
		{[]string{"noop", "-listen", "256.0.0.1:1"}, 1, "opes-bench:"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		code := run(t.Context(), tt.args, &out, &out)
		if code != tt.code || !strings.Contains(out.String(), tt.out) {
			t.Errorf("run %q = %d, %q; want %d containing %q", tt.args, code, out.String(), tt.code, tt.out)
		}
	}
}

// TestLoadCommand drives the in-process baseline with "opes-bench load".
func TestLoadCommand(t *testing.T) {
	addr := startNoopServer(t)
	var out bytes.Buffer
	code := run(t.Context(), []string{"load", "-addr", addr, "-sessions", "2", "-messages", "10", "-duration", "0"}, &out, &out)
	if code != 0 || !strings.Contains(out.String(), "messages 10 ") || !strings.Contains(out.String(), "errors 0,") {
		t.Errorf("load = %d, %q", code, out.String())
	}
}

// TestRunCommand runs the direct cases, the many-sessions check and the
// large-message check end to end with tiny parameters, from freshly
// built daemons, and checks the report it writes.
func TestRunCommand(t *testing.T) {
	root, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/opes-milter", "./cmd/opes-callout")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv(asMain, "1")
	doc := filepath.Join(t.TempDir(), "PERFORMANCE.md")
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"run", "-bin", bin, "-doc", doc, "-cases", "a,b,c", "-runs", "2",
		"-sessions", "4", "-duration", "300ms", "-warmup", "100ms", "-concurrency", "40", "-large", "3MiB"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run = %d\n%s\n%s", code, stderr.String(), stdout.String())
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	for _, want := range []string{beginMarker, "| (b) opes-milter + opes-callout, pass-through |",
		"| (c) / (a) | CPU per message |", "40 milter sessions opened at once", "**0 errors**",
		"| (c) | 3MiB |", "| opes-milter | "} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if !strings.Contains(stdout.String(), endMarker) || !strings.Contains(stderr.String(), "round 2/2") {
		t.Errorf("output:\n%s\n%s", stdout.String(), stderr.String())
	}
	if t.Failed() {
		t.Log(report)
	}
}
