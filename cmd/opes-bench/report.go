package main

import (
	"fmt"
	"strings"
	"time"
)

// Report is everything a bench run measured.
type Report struct {
	Machine     Machine
	Options     Options
	Cases       []Case
	Runs        map[string][]Run // by case ID, in round order
	Concurrency *ConcurrencyResult
	Large       []LargeResult
	AltBin      string // where the "alt build" cases took their binaries
	Started     time.Time
	Took        time.Duration
}

// Failures counts failed messages over everything measured.
func (r *Report) Failures() int {
	n := 0
	for _, runs := range r.Runs {
		for _, run := range runs {
			n += run.Errors
		}
	}
	if r.Concurrency != nil {
		n += r.Concurrency.Errors
	}
	for _, l := range r.Large {
		if l.Err != "" {
			n++
		}
	}
	return n
}

// Markers delimit the generated part of docs/PERFORMANCE.md.
const (
	beginMarker = "<!-- BEGIN opes-bench: written by `make bench` (cmd/opes-bench); edits between these markers are overwritten -->"
	endMarker   = "<!-- END opes-bench -->"
)

// Markdown renders the report, markers included.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString(beginMarker + "\n\n")
	r.machine(&b)
	r.results(&b)
	r.ratios(&b)
	r.extras(&b)
	b.WriteString(endMarker + "\n")
	return b.String()
}

func (r *Report) machine(b *strings.Builder) {
	m := r.Machine
	fmt.Fprintf(b, "## End-to-end: `make bench`\n\n### Machine\n\n")
	fmt.Fprintf(b, "| | |\n|---|---|\n")
	fmt.Fprintf(b, "| CPU | %s; %d logical CPUs (nproc) |\n", m.CPU, m.NProc)
	fmt.Fprintf(b, "| Memory | %s |\n", m.Memory)
	fmt.Fprintf(b, "| System | %s |\n", m.System)
	fmt.Fprintf(b, "| Software | %s |\n", m.Software)
	fmt.Fprintf(b, "| Run | %s, took %s |\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Took.Round(time.Second))
}

func (r *Report) results(b *strings.Builder) {
	o := r.Options
	fmt.Fprintf(b, "### Results\n\n")
	fmt.Fprintf(b, "%d interleaved rounds (each round runs every case once, each run with freshly started processes); "+
		"figures are **median (min–max)** over the rounds. %d concurrent sessions everywhere. "+
		"Direct cases (a)–(d): the load generator (go-milter client acting as Postfix, one milter connection "+
		"per message) sends %s messages (size/recipients) for %v after %v of warm-up; latency is per message, "+
		"from opening the milter connection to the end-of-message reply; \"clamd directly\" sends the same messages "+
		"to clamd as the clamd service does by default over a unix socket (zFILDES: the message in an in-memory file, "+
		"its descriptor passed), one connection per message, latency from connecting to the verdict. The antivirus "+
		"cases share one clamd (test signature only), whose CPU counts in each. Postfix cases: `smtp-source -s %d -l %d -r %d -m %d` "+
		"(after %d warm-up messages), relayed to `smtp-sink`; msg/s is what smtp-source achieved, and the CPU window "+
		"closes when the queue is delivered. CPU is user+system time of every process of the case (for Postfix "+
		"every process under the master, plus smtp-sink), not of the load generator.\n\n",
		o.Runs, o.Sessions, mixText(o.Mix), o.Duration, o.Warmup, o.Sessions, o.PostfixSize, o.PostfixRcpts,
		o.PostfixMessages, o.PostfixWarmup)
	if o.Slices > 1 {
		fmt.Fprintf(b, "The cases of a round (all but clamd directly, spamd and spamc) ran **side by side**: every one up at "+
			"once (each its own daemons, Postfix and scanners; clamd shared) and warmed up, then its share (%d messages "+
			"through Postfix, or %v of direct load) sent in %d slices, each slice going to every case in turn, in the "+
			"given order and then reversed; a case's run is the sum of its slices. What the rest of the machine does "+
			"then weighs alike on the cases a ratio compares.\n\n", o.PostfixMessages, o.Duration, o.Slices)
	}
	if r.hasAlt() {
		fmt.Fprintf(b, "Cases marked \"alt build\" ran opes-milter and opes-callout built from `%s`, in the same rounds "+
			"as the others, beside their twin: after it in odd rounds, before it in even ones.\n\n", r.AltBin)
	}
	fmt.Fprintf(b, "| Case | msg/s | p50 ms | p99 ms | CPU s / 1,000 msgs | errors |\n")
	fmt.Fprintf(b, "|---|--:|--:|--:|--:|--:|\n")
	var sums []Summary
	for _, c := range r.Cases {
		s := summarize(c, r.Runs[c.ID])
		sums = append(sums, s)
		p50, p99 := "–", "–"
		if s.P50.N > 0 {
			p50, p99 = fmtSpread(s.P50, 2), fmtSpread(s.P99, 2)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | **%s** | %d |\n", c.Title, fmtSpread(s.Throughput, 0), p50, p99,
			fmtSpread(s.CPUPer1000, 3), s.Errors)
	}
	fmt.Fprintf(b, "\nPer process: CPU s / 1,000 messages (median) and peak RSS (largest VmHWM of any process of that "+
		"name in any round; for Postfix the process holding it and how many processes ran).\n\n")
	fmt.Fprintf(b, "| Case | process | CPU s / 1,000 msgs | peak RSS |\n|---|---|--:|--:|\n")
	for _, s := range sums {
		for _, c := range s.Components {
			name := c.Name
			if c.Driver {
				name += " (driver, not counted)"
			}
			if c.Scanner {
				name += " (scanner, not counted)"
			}
			rss := fmtMiB(c.HWM)
			if c.Procs > 1 {
				rss = fmt.Sprintf("%s (%s; %d processes)", rss, c.HWMComm, c.Procs)
			}
			fmt.Fprintf(b, "| %s | %s | %.3f | %s |\n", s.Case.Title, name, c.CPUPer1000.Median, rss)
		}
	}
	for _, s := range sums {
		if s.FirstError != "" {
			fmt.Fprintf(b, "\nFirst error of %s: `%s`\n", s.Case.Title, oneLine(s.FirstError))
		}
	}
	b.WriteString("\n")
}

// ratioRow is one line of the ratio table.
type ratioRow struct {
	name, figure string
	num, den     string // case IDs
	f            func(Run) float64
	diff         bool   // num - den instead of num / den
	target       string // "", "<= 1.5", ">= 0.9"
	limit        float64
}

func (r *Report) ratios(b *strings.Builder) {
	rows := []ratioRow{
		{"(b) / (a)", "CPU per message", "b", "a", figCPU, false, "", 0}, // not a target (docs/PERFORMANCE.md)
		{"(b) / (a)", "wall time per message", "b", "a", figMsgTime, false, "≤ 1.5", 1.5},
		{"(c) / (a)", "CPU per message", "c", "a", figCPU, false, "", 0},
		{"(c) / (a)", "wall time per message", "c", "a", figMsgTime, false, "≤ 2.5", 2.5},
		{"p99 (b) − p99 (a)", "ms", "b", "a", figP99, true, "≤ 2 ms", 2},
		{"p50 (b) − p50 (a)", "ms", "b", "a", figP50, true, "", 0},
		{"Postfix+(b) / Postfix+(a)", "msg/s", "postfix+b", "postfix+a", figTput, false, "≥ 0.9", 0.9},
		{"Postfix+(b) / Postfix+(a)", "CPU per message", "postfix+b", "postfix+a", figCPU, false, "", 0},
		{"Postfix+(b) / Postfix alone", "msg/s", "postfix+b", "postfix", figTput, false, "", 0},
		{"Postfix+(a) / Postfix alone", "msg/s", "postfix+a", "postfix", figTput, false, "", 0},
		{"Postfix+(b) / Postfix alone", "CPU per message", "postfix+b", "postfix", figCPU, false, "", 0},
		{"Postfix+(d) / Postfix+clamav-milter", "msg/s", "postfix+d", "postfix+clamav-milter", figTput, false, "≥ 1.1", 1.1},
		{"Postfix+(d) / Postfix+clamav-milter", "CPU per message", "postfix+d", "postfix+clamav-milter", figCPU, false, "≤ 1.0", 1.0},
		// The targets are the two daemons'; -local is reported beside them.
		{"Postfix+(d, -local) / Postfix+clamav-milter", "msg/s", "postfix+d-local", "postfix+clamav-milter", figTput, false, "", 0},
		{"Postfix+(d, -local) / Postfix+clamav-milter", "CPU per message", "postfix+d-local", "postfix+clamav-milter", figCPU, false, "", 0},
		{"Postfix+(d, -local) / Postfix+(d)", "CPU per message", "postfix+d-local", "postfix+d", figCPU, false, "", 0},
		{"Postfix+clamav-milter / Postfix+(a)", "msg/s", "postfix+clamav-milter", "postfix+a", figTput, false, "", 0},
		{"Postfix+clamav-milter / Postfix alone", "msg/s", "postfix+clamav-milter", "postfix", figTput, false, "", 0},
		{"Postfix+clamav-milter / Postfix+(a)", "CPU per message", "postfix+clamav-milter", "postfix+a", figCPU, false, "", 0},
		{"(d) / clamav-milter, direct", "CPU per message", "d", "clamav-milter", figCPU, false, "", 0},
		{"(d) / clamav-milter, direct", "wall time per message", "d", "clamav-milter", figMsgTime, false, "", 0},
		{"p50 (d) − p50 clamd directly", "ms", "d", "clamd", figP50, true, "", 0},
		{"p99 (d) − p99 clamd directly", "ms", "d", "clamd", figP99, true, "", 0},
	}
	rows = append(rows, scanRatios...)
	if r.hasAlt() {
		rows = append(rows,
			ratioRow{"(b, alt) / (b)", "CPU per message", "b" + altSuffix, "b", figCPU, false, "", 0},
			ratioRow{"(b, alt) / (a)", "CPU per message", "b" + altSuffix, "a", figCPU, false, "", 0},
			ratioRow{"(b, alt) / (a)", "wall time per message", "b" + altSuffix, "a", figMsgTime, false, "≤ 1.5", 1.5},
			ratioRow{"(c, alt) / (c)", "CPU per message", "c" + altSuffix, "c", figCPU, false, "", 0},
			ratioRow{"(c, alt) / (a)", "CPU per message", "c" + altSuffix, "a", figCPU, false, "", 0},
			ratioRow{"p99 (b, alt) − p99 (a)", "ms", "b" + altSuffix, "a", figP99, true, "≤ 2 ms", 2},
			ratioRow{"Postfix+(b, alt) / Postfix+(a)", "msg/s", "postfix+b" + altSuffix, "postfix+a", figTput, false, "≥ 0.9", 0.9},
			ratioRow{"Postfix+(b, alt) / Postfix+(b)", "CPU per message", "postfix+b" + altSuffix, "postfix+b", figCPU, false, "", 0},
			ratioRow{"(d, alt) / (d)", "CPU per message", "d" + altSuffix, "d", figCPU, false, "", 0},
			ratioRow{"Postfix+(d, alt) / Postfix+(d)", "msg/s", "postfix+d" + altSuffix, "postfix+d", figTput, false, "", 0},
			ratioRow{"Postfix+(d, alt) / Postfix+(d)", "CPU per message", "postfix+d" + altSuffix, "postfix+d", figCPU, false, "", 0},
			ratioRow{"Postfix+(d, alt) / Postfix+clamav-milter", "msg/s", "postfix+d" + altSuffix, "postfix+clamav-milter", figTput, false, "≥ 1.1", 1.1},
			ratioRow{"Postfix+(d, alt) / Postfix+clamav-milter", "CPU per message", "postfix+d" + altSuffix, "postfix+clamav-milter", figCPU, false, "≤ 1.0", 1.0},
		)
	}
	fmt.Fprintf(b, "### Ratios\n\n")
	fmt.Fprintf(b, "Each ratio is taken per round (run *i* of one case against run *i* of the other) and summarised "+
		"as median (min–max). Wall time per message is 1 / throughput at %d sessions.\n\n", r.Options.Sessions)
	fmt.Fprintf(b, "| Ratio | figure | median (min–max) | target | met |\n|---|---|--:|---|---|\n")
	for _, row := range rows {
		num, den := r.Runs[row.num], r.Runs[row.den]
		if len(num) == 0 || len(den) == 0 {
			continue
		}
		var s Spread
		if row.diff {
			s = pairedDiff(num, den, row.f)
		} else {
			s = pairedRatio(num, den, row.f)
		}
		met := ""
		switch {
		case row.target == "":
		case strings.HasPrefix(row.target, "≥"):
			met = yesNo(s.Median >= row.limit)
		default:
			met = yesNo(s.Median <= row.limit)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", row.name, row.figure, fmtSpread(s, 2), row.target, met)
	}
	b.WriteString("\n")
}

func (r *Report) extras(b *strings.Builder) {
	if c := r.Concurrency; c != nil {
		fmt.Fprintf(b, "### Many sessions\n\n")
		fmt.Fprintf(b, "%d milter sessions opened at once against (c) (`max_sessions` raised to %d; `connections = 2` "+
			"per callout server as shipped), then %d messages on each: %d messages accepted, **%d errors**, "+
			"at most **%d OCP connections** to opes-callout (target: ≤ 8, zero errors: %s). "+
			"%.1f s; latency p50 %.1f ms, p99 %.1f ms; opes-milter peak RSS %s.\n\n",
			c.Sessions, c.Sessions, c.PerSession, c.Messages, c.Errors, c.MaxOCPConns,
			yesNo(c.Errors == 0 && c.MaxOCPConns <= 8 && c.MaxOCPConns > 0),
			c.Elapsed.Seconds(), ms(c.P50), ms(c.P99), fmtMiB(c.MilterHWM))
		if len(c.FirstErrors) > 0 {
			fmt.Fprintf(b, "First error: `%s`\n\n", oneLine(c.FirstErrors[0]))
		}
	}
	if len(r.Large) > 0 {
		fmt.Fprintf(b, "### Large message\n\n")
		fmt.Fprintf(b, "One message with one recipient through freshly started daemons (`max_message_size` raised), "+
			"made of %d text/plain parts so that the disclaimer of (c), which leaves text parts over 16 MiB alone, "+
			"rewrites every part. Peak RSS is VmHWM after the message; \"before\" is after one small message.\n\n",
			r.Large[0].Parts)
		fmt.Fprintf(b, "| Case | size | time | opes-milter peak RSS (before) | target | met | opes-callout peak RSS | body replaced |\n")
		fmt.Fprintf(b, "|---|--:|--:|--:|--:|---|--:|---|\n")
		for _, l := range r.Large {
			limit := int64(64 << 20)
			if l.Case == "c" {
				limit = 96 << 20
			}
			met := yesNo(l.Err == "" && l.MilterHWM <= limit)
			fmt.Fprintf(b, "| (%s) | %s | %.1f s | %s (%s) | ≤ %s | %s | %s | %s |\n", l.Case, formatSize(l.Size),
				l.Elapsed.Seconds(), fmtMiB(l.MilterHWM), fmtMiB(l.StartHWM), fmtMiB(limit), met,
				fmtMiB(l.CalloutHWM), map[bool]string{true: "yes", false: "no"}[l.Replaced])
			if l.Err != "" {
				fmt.Fprintf(b, "\nError in (%s): `%s`\n\n", l.Case, oneLine(l.Err))
			}
		}
		b.WriteString("\n")
	}
}

// hasAlt reports whether an alternative build was measured.
func (r *Report) hasAlt() bool {
	for _, c := range r.Cases {
		if c.Alt {
			return true
		}
	}
	return false
}

// mixText describes the message mix for the report: "10KiB/3" for one
// shape, the weighted list otherwise.
func mixText(m Mix) string {
	if len(m) == 1 {
		return m[0].Shape.String()
	}
	return m.String()
}

// fmtSpread prints "median (min–max)" with prec decimals.
func fmtSpread(s Spread, prec int) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.*f", prec, s.Median)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

// fmtMiB prints a byte count in MiB.
func fmtMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// oneLine shortens an error for a table note.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ⏎ ")
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
