package main

import (
	"strings"
	"testing"
	"time"
)

// fakeRuns makes n runs of a case with the given throughput and CPU per
// message.
func fakeRuns(id string, n int, tput float64, cpuPerMsg time.Duration, lat time.Duration) []Run {
	var rs []Run
	for i := range n {
		msgs := int(tput) * 10
		r := Run{Case: id, Messages: msgs, Elapsed: 10 * time.Second, Usage: []Usage{
			{Name: "daemon", CPU: cpuPerMsg * time.Duration(msgs), Peaks: []Peak{{Comm: "daemon", Procs: 1, HWM: 20 << 20}}},
			{Name: "load generator", Driver: true, CPU: time.Second},
		}}
		if lat > 0 {
			for j := range 100 {
				r.Latencies = append(r.Latencies, lat+time.Duration(i*100+j)*time.Microsecond)
			}
		}
		rs = append(rs, r)
	}
	return rs
}

func TestReportMarkdown(t *testing.T) {
	rep := &Report{
		Machine: Machine{CPU: "Test CPU", NProc: 2, Memory: "1 GiB", System: "Linux", Software: "go"},
		Options: Options{Runs: 3, Sessions: 16, Duration: time.Second, Mix: defaultMix(), PostfixSize: 10240, PostfixRcpts: 3, PostfixMessages: 100},
		Cases:   allCases(),
		Runs: map[string][]Run{
			"a":         fakeRuns("a", 3, 1000, 200*time.Microsecond, 5*time.Millisecond),
			"b":         fakeRuns("b", 3, 800, 280*time.Microsecond, 6*time.Millisecond),
			"c":         fakeRuns("c", 3, 400, 600*time.Microsecond, 9*time.Millisecond),
			"postfix":   fakeRuns("postfix", 3, 200, 2*time.Millisecond, 0),
			"postfix+a": fakeRuns("postfix+a", 3, 150, 3*time.Millisecond, 0),
			"postfix+b": fakeRuns("postfix+b", 3, 140, 3*time.Millisecond, 0),
		},
		Concurrency: &ConcurrencyResult{Sessions: 1000, PerSession: 3, Messages: 3000, MaxOCPConns: 2},
		Large:       []LargeResult{{Case: "b", Size: 100 << 20, MilterHWM: 30 << 20}, {Case: "c", Size: 100 << 20, MilterHWM: 120 << 20}},
	}
	md := rep.Markdown()
	for _, want := range []string{
		beginMarker, endMarker, "| CPU | Test CPU; 2 logical CPUs (nproc) |",
		"| (a) go-milter no-op, every event | 1000 (1000–1000) | 5.15 (5.05–5.25) | 5.20 (5.10–5.30) | **0.200 (0.200–0.200)** | 0 |",
		"| (b) / (a) | CPU per message | 1.40 (1.40–1.40) |  |  |", // CPU is not a target
		"| (c) / (a) | CPU per message | 3.00 (3.00–3.00) |  |  |",
		"| Postfix+(b) / Postfix+(a) | msg/s | 0.93 (0.93–0.93) | ≥ 0.9 | yes |",
		"| p99 (b) − p99 (a) | ms | 1.00 (1.00–1.00) | ≤ 2 ms |",
		"| Postfix alone | 200 (200–200) | – | – |",
		"at most **2 OCP connections**", "zero errors: yes",
		"| (b) | 100MiB |", "| 30.0 MiB (0.0 MiB) | ≤ 64.0 MiB | yes |", "| 120.0 MiB (0.0 MiB) | ≤ 96.0 MiB | **no** |",
		"load generator (driver, not counted)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
	if n := rep.Failures(); n != 0 {
		t.Errorf("Failures = %d", n)
	}
	rep.Runs["a"][1].Errors = 2
	rep.Large[0].Err = "boom"
	if n := rep.Failures(); n != 3 {
		t.Errorf("Failures = %d; want 3", n)
	}
}

func TestFormatting(t *testing.T) {
	if s := fmtSpread(Spread{}, 2); s != "–" {
		t.Errorf("empty spread %q", s)
	}
	if s := fmtSpread(Spread{Median: 1.234, Min: 1.234, Max: 1.234, N: 1}, 1); s != "1.2" {
		t.Errorf("single run %q", s)
	}
	if s := oneLine("a\nb `c`"); s != "a ⏎ b 'c'" {
		t.Errorf("oneLine %q", s)
	}
	if s := oneLine(strings.Repeat("x", 500)); len(s) != 400+len("…") {
		t.Errorf("oneLine did not shorten: %d", len(s))
	}
}

func TestReportAlt(t *testing.T) {
	b, _ := caseByID("b")
	a, _ := caseByID("a")
	rep := &Report{
		Options: Options{Runs: 2, Sessions: 16, Mix: defaultMix()},
		Cases:   []Case{a, b, altOf(b)},
		AltBin:  "/tmp/after",
		Runs: map[string][]Run{
			"a":     fakeRuns("a", 2, 1000, 200*time.Microsecond, time.Millisecond),
			"b":     fakeRuns("b", 2, 800, 400*time.Microsecond, time.Millisecond),
			"b-alt": fakeRuns("b-alt", 2, 900, 300*time.Microsecond, time.Millisecond),
		},
	}
	md := rep.Markdown()
	for _, want := range []string{"built from `/tmp/after`", "| (b) opes-milter + opes-callout, pass-through, alt build | 900",
		"| (b, alt) / (b) | CPU per message | 0.75 (0.75–0.75) |", "| (b, alt) / (a) | CPU per message | 1.50 (1.50–1.50) |  |  |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "Postfix+(b, alt)") {
		t.Error("ratio of cases that did not run")
	}
}
