package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// Milter kinds a case puts behind the MTA.
const (
	milterNone = ""     // no milter (Postfix alone)
	milterNoop = "noop" // the go-milter no-op baseline (a)
	milterPass = "pass" // opes-milter + opes-callout, pass-through chain (b)
	milterFull = "full" // opes-milter + opes-callout, the `make run` chain (c)
	// milterClamd is opes-milter + opes-callout with the clamd service (d).
	milterClamd = "clamd"
	// milterClamav is Debian's clamav-milter over the same clamd, the anchor
	// of (d).
	milterClamav = "clamav-milter"
)

// Case is one configuration the bench measures.
type Case struct {
	ID      string // "a", "b", "c", "postfix", "postfix+a", "postfix+b"
	Title   string
	Postfix bool   // fed through a real Postfix by smtp-source
	Milter  string // milterNone, milterNoop, milterPass, milterFull, milterClamd or milterClamav
	// Scanner is the spam scanner of the spam cases (scanSpamd, ...), ""
	// for the others.
	Scanner string
	// ClamdDirect sends the direct cases' messages to clamd itself, without
	// any milter: the reference for the latency of (d).
	ClamdDirect bool
	// Alt runs opes-milter and opes-callout from the -alt-bin directory:
	// another build of the same cases, measured in the same rounds
	// (before/after a change).
	Alt bool
	// Local runs opes-milter alone with run -local: the callout services
	// inside it (one daemon), instead of opes-milter and opes-callout.
	Local bool
}

// altSuffix marks the ID of a case run with the alternative build.
const altSuffix = "-alt"

// appendCase appends c to cases unless a case with its ID is there: a
// case named twice (or a twin named after its case brought it) runs once
// per round.
func appendCase(cases []Case, c Case) []Case {
	if slices.ContainsFunc(cases, func(x Case) bool { return x.ID == c.ID }) {
		return cases
	}
	return append(cases, c)
}

// roundOrder returns the order of cases in round (from 1): as given in odd
// rounds; in even ones each case followed by its alt twin runs after it
// instead. Whatever the order within a round favours (the kernel still
// finishing the previous case's connections, a warmer cache) then falls
// on both builds alike. With the twin always second, full runs put case
// (b)'s CPU at 1.12-1.20 times the alt build's where runs of a few cases
// put it at 0.89-1.02.
func roundOrder(cases []Case, round int) []Case {
	out := slices.Clone(cases)
	if round%2 == 1 {
		return out
	}
	for i := 0; i+1 < len(out); i++ {
		if out[i+1].Alt && out[i+1].ID == out[i].ID+altSuffix {
			out[i], out[i+1] = out[i+1], out[i]
			i++
		}
	}
	return out
}

// altOf returns c run with the alternative build.
func altOf(c Case) Case {
	c.ID += altSuffix
	c.Title += ", alt build"
	c.Alt = true
	return c
}

// allCases returns the cases of the issue, in report order.
func allCases() []Case {
	return []Case{
		{ID: "a", Title: "(a) go-milter no-op, every event", Milter: milterNoop},
		{ID: "b", Title: "(b) opes-milter + opes-callout, pass-through", Milter: milterPass},
		{ID: "c", Title: "(c) opes-milter + opes-callout, make run chain", Milter: milterFull},
		{ID: "d", Title: "(d) opes-milter + opes-callout, clamd service", Milter: milterClamd},
		{ID: "clamd", Title: "clamd directly (zFILDES), same messages", ClamdDirect: true},
		{ID: "clamav-milter", Title: "clamav-milter over the same clamd", Milter: milterClamav},
		{ID: "postfix", Title: "Postfix alone", Postfix: true},
		{ID: "postfix+a", Title: "Postfix + (a)", Postfix: true, Milter: milterNoop},
		{ID: "postfix+b", Title: "Postfix + (b)", Postfix: true, Milter: milterPass},
		{ID: "spamd", Title: "(s) opes-milter + opes-callout, spamd service", Milter: milterPass, Scanner: scanSpamd},
		{ID: "spamc", Title: "(s') opes-milter + opes-callout, spamc by the command service", Milter: milterPass, Scanner: scanSpamc},
		{ID: "postfix+rspamd", Title: "Postfix + opes-milter + opes-callout, rspamd service", Postfix: true, Milter: milterPass, Scanner: scanRspamd},
		{ID: "postfix+rspamd-local", Title: "Postfix + opes-milter -local, rspamd service", Postfix: true, Milter: milterPass, Scanner: scanRspamd, Local: true},
		{ID: "postfix+rspamd-milter", Title: "Postfix + rspamd's milter (proxy, self_scan)", Postfix: true, Scanner: scanRspamdMilter},
		{ID: "postfix+d", Title: "Postfix + (d)", Postfix: true, Milter: milterClamd},
		{ID: "postfix+d-local", Title: "Postfix + (d), opes-milter -local", Postfix: true, Milter: milterClamd, Local: true},
		{ID: "postfix+clamav-milter", Title: "Postfix + clamav-milter", Postfix: true, Milter: milterClamav},
	}
}

// Alternates reports whether the case also runs with the -alt-bin build:
// the opes-milter cases that only need services every build has (the
// clamd service included: before/after a change to it).
func (c Case) Alternates() bool {
	return (c.Milter == milterPass || c.Milter == milterFull || c.Milter == milterClamd) && c.Scanner == "" && !c.Local
}

// alternatesByName reports whether the case runs with the -alt-bin build
// when named with the -alt suffix, though not by default: the rspamd
// service case, for a build that has the service (before/after a change
// to it).
func (c Case) alternatesByName() bool { return c.Scanner == scanRspamd && !c.Local }

// caseByID finds a case.
func caseByID(id string) (Case, bool) {
	all := allCases()
	base, alt := strings.CutSuffix(id, altSuffix)
	i := slices.IndexFunc(all, func(c Case) bool { return c.ID == base })
	if i < 0 || (alt && !all[i].Alternates() && !all[i].alternatesByName()) {
		return Case{}, false
	}
	if alt {
		return altOf(all[i]), true
	}
	return all[i], true
}

// Options are the parameters of a bench run.
type Options struct {
	Runs             int           // interleaved runs of each case
	Sessions         int           // concurrent sessions (milter or SMTP)
	Duration         time.Duration // measured time of a direct case
	Warmup           time.Duration // unmeasured load before it
	Mix              Mix           // direct cases
	PostfixMessages  int           // messages per Postfix run
	PostfixWarmup    int           // unmeasured messages before them
	PostfixSize      int64         // smtp-source -l
	PostfixRcpts     int           // smtp-source -r
	PostfixDrainWait time.Duration // bound on delivering the queue
	// Slices, above 1, runs the cases of a round that can (Case.sideBySide)
	// side by side in that many slices (runSideBySide).
	Slices int
}

// Run is the measurement of one run of one case.
type Run struct {
	Case        string
	Messages    int // messages accepted (and, through Postfix, delivered)
	Errors      int
	FirstErrors []string
	Elapsed     time.Duration   // wall time to send the messages
	Latencies   []time.Duration // direct cases only
	Usage       []Usage
}

// Throughput is messages per second.
func (r Run) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Messages) / r.Elapsed.Seconds()
}

// CPU is the CPU time of the case's processes (the load generator not
// counted).
func (r Run) CPU() time.Duration {
	var t time.Duration
	for _, u := range r.Usage {
		if !u.Driver && !u.Scanner {
			t += u.CPU
		}
	}
	return t
}

// CPUPer1000 is CPU seconds per 1,000 messages.
func (r Run) CPUPer1000() float64 {
	if r.Messages == 0 {
		return 0
	}
	return r.CPU().Seconds() * 1000 / float64(r.Messages)
}

// runCase runs one case once in a fresh directory under the work dir.
func (e *env) runCase(ctx context.Context, c Case, o Options) (Run, error) {
	if c.ClamdDirect {
		return e.runClamdDirect(ctx, c, o)
	}
	s, err := e.setUp(ctx, c, o)
	if err != nil {
		return Run{}, err
	}
	defer s.close()
	return s.measure(ctx, o, o.PostfixMessages, o.Duration)
}

// caseDir makes a fresh directory for one run of c under the work dir.
func (e *env) caseDir(c Case) (string, error) {
	dir, err := os.MkdirTemp(e.work, "case-"+strings.ReplaceAll(c.ID, "+", "-")+"-")
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}

// stopAll runs stops in reverse order.
func stopAll(stops []func()) {
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}

// startMilter starts the milter of c (and the scanners it uses) in dir and
// returns its address ("" for none), the components it adds to the case
// and what stops them, in the order started: also on error, for what was
// started before it.
func (e *env) startMilter(dir string, c Case, o Options) (addr string, comps []Component, stops []func(), err error) {
	var scanAddr string
	switch c.Scanner {
	case scanSpamd, scanSpamc:
		sp, a, err := e.startSpamd(dir, o.Sessions)
		if err != nil {
			return "", nil, stops, err
		}
		stops = append(stops, sp.Stop)
		// spamd's own CPU is reported, not counted: the cases compare
		// what it costs to call it.
		scanAddr, comps = a, append(comps, Component{Name: "spamd", Pid: sp.Pid(), Scanner: true})
	case scanRspamd, scanRspamdMilter:
		rs, err := e.startRspamd(dir)
		if err != nil {
			return "", nil, stops, err
		}
		stops = append(stops, rs.Stop)
		// The rspamd service reaches rspamd over its unix socket.
		scanAddr, comps = "unix:"+rs.Socket, append(comps, Component{Name: "rspamd", Pid: rs.Pid()})
		if c.Scanner == scanRspamdMilter {
			addr = rs.MilterAddr
		}
	}
	switch c.Milter {
	case milterNoop:
		ch, a, err := e.startNoop(dir)
		if err != nil {
			return "", nil, stops, err
		}
		stops = append(stops, ch.Stop)
		addr, comps = a, []Component{{Name: "go-milter no-op", Pid: ch.Pid()}}
	case milterPass, milterFull, milterClamd:
		v := opesVariant{PassThrough: c.Milter == milterPass, Alt: c.Alt, Local: c.Local}
		if c.Scanner != "" {
			v.Chain, v.Extra = scanChain, scannerServices(c.Scanner, scanAddr, o.Sessions)
			v.Parts = partsScanEnvelope
		}
		var cd *clamdProc
		if c.Milter == milterClamd {
			if cd, err = e.clamd(); err != nil {
				return "", nil, stops, err
			}
			v.Chain, v.Extra = chainClamd, strings.ReplaceAll(clamdServices, "@SOCKET@", cd.Socket)
			v.Parts = partsScanOnly
		}
		p, err := e.startOpes(dir, v)
		if err != nil {
			return "", nil, stops, err
		}
		stops = append(stops, p.Stop)
		addr, comps = p.MilterAddr, append(p.Components(), comps...)
		if cd != nil {
			comps = append(comps, Component{Name: "clamd", Pid: cd.Pid()})
		}
	case milterClamav:
		cd, err := e.clamd()
		if err != nil {
			return "", nil, stops, err
		}
		ch, a, err := e.startClamavMilter(dir)
		if err != nil {
			return "", nil, stops, err
		}
		stops = append(stops, ch.Stop)
		addr, comps = a, []Component{{Name: "clamav-milter", Pid: ch.Pid()}, {Name: "clamd", Pid: cd.Pid()}}
	}
	return addr, comps, stops, nil
}

// waitSent polls the maillog until it counts at least n delivered
// recipients or timeout passes (postlogd writes asynchronously), and
// returns the count.
func (p *postfix) waitSent(n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		sent, _ := p.LogCounts()
		if sent >= n || time.Now().After(deadline) {
			return sent
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startNoop starts the baseline filter ("opes-bench noop") on a free port.
func (e *env) startNoop(dir string) (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	ch, err := startChild("go-milter no-op", []string{e.selfBin, "noop", "-listen", addr}, dir,
		filepath.Join(dir, "noop.log"), func() bool { return peerprobe.Listening(addr) })
	if err != nil {
		return nil, "", err
	}
	return ch, addr, nil
}
