package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// This file holds the Postfix cases' processes as a stack that stays up
// for several measured windows, and the runs that measure several Postfix
// cases side by side in slices (-slices).

// stack is one case ready to measure: its milter (and scanners) up and,
// for a Postfix case, Postfix and smtp-sink; the warm-up done.
type stack struct {
	c      Case
	addr   string // a direct case: the milter the load generator drives
	pf     *postfix
	src    smtpSource
	comps  []Component
	stops  []func()
	expect int // a Postfix case: delivered recipients the maillog counts so far
}

// sideBySide reports whether c can run side by side with others: every
// case but the ones whose own pace decides their figures (clamd directly,
// and spamd and spamc, which take seconds per message).
func (c Case) sideBySide() bool {
	return c.Postfix || (c.Milter != milterNone && c.Scanner == "")
}

// setUp starts the processes of c in a fresh directory and warms them up.
func (e *env) setUp(ctx context.Context, c Case, o Options) (s *stack, err error) {
	dir, err := e.caseDir(c)
	if err != nil {
		return nil, err
	}
	s = &stack{c: c}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	addr, comps, stops, err := e.startMilter(dir, c, o)
	s.stops, s.comps = stops, comps
	if err != nil {
		return s, err
	}
	if !c.Postfix {
		s.addr = addr
		if o.Warmup > 0 { // a zero Duration would mean "no time limit"
			RunLoad(ctx, LoadOptions{Addr: addr, Sessions: o.Sessions, Duration: o.Warmup, Mix: o.Mix})
		}
		return s, nil
	}
	socket := ""
	if addr != "" {
		socket = "inet:" + addr
	}
	if s.pf, err = e.startPostfix(dir, socket); err != nil {
		return s, err
	}
	s.stops = append(s.stops, s.pf.Stop)
	s.comps = append(s.comps, s.pf.Components()...)
	s.src = smtpSource{addr: s.pf.SMTPAddr, sessions: o.Sessions, size: o.PostfixSize, rcpts: o.PostfixRcpts}
	if _, err := s.src.run(ctx, o.PostfixWarmup); err != nil {
		return s, err
	}
	if err := s.pf.WaitDrained(o.PostfixDrainWait); err != nil {
		return s, err
	}
	s.expect = o.PostfixWarmup * o.PostfixRcpts
	return s, nil
}

// close stops the stack's processes, the last started first.
func (s *stack) close() { stopAll(s.stops) }

// measure measures one window: a Postfix case fed with messages, from the
// first to the delivery of the last; a direct case driven for d.
func (s *stack) measure(ctx context.Context, o Options, messages int, d time.Duration) (Run, error) {
	if s.pf == nil {
		lo := LoadOptions{Addr: s.addr, Sessions: o.Sessions, Duration: d, Mix: o.Mix}
		m := startMeter(append(slices.Clone(s.comps), Component{Name: "load generator", Driver: true}))
		res := RunLoad(ctx, lo)
		return Run{
			Case: s.c.ID, Messages: res.Messages, Errors: res.Errors, FirstErrors: res.FirstErrors,
			Elapsed: res.Elapsed, Latencies: res.Latencies, Usage: m.Stop(),
		}, nil
	}
	pf := s.pf
	sent0 := pf.waitSent(s.expect, 10*time.Second)
	_, other0 := pf.LogCounts()

	m := startMeter(s.comps)
	res, srcErr := s.src.run(ctx, messages)
	drainErr := pf.WaitDrained(o.PostfixDrainWait)
	usage := m.Stop()
	usage = append(usage, Usage{Name: "smtp-source", Driver: true, CPU: res.cpu,
		Peaks: []Peak{{Comm: "smtp-source", Procs: 1, HWM: res.maxRSS}}})

	r := Run{Case: s.c.ID, Elapsed: res.elapsed, Usage: usage}
	want := messages * o.PostfixRcpts
	sent := pf.waitSent(sent0+want, 10*time.Second) - sent0
	s.expect = sent0 + sent
	_, other := pf.LogCounts()
	r.Messages = sent / max(o.PostfixRcpts, 1)
	r.Errors = messages - r.Messages
	for _, err := range []error{srcErr, drainErr} {
		if err != nil {
			r.FirstErrors = append(r.FirstErrors, err.Error())
		}
	}
	if other > other0 || r.Errors > 0 {
		r.FirstErrors = append(r.FirstErrors, fmt.Sprintf("maillog: %d recipients sent of %d, %d other outcomes; last lines:\n%s",
			sent, want, other-other0, pf.Log(8)))
	}
	return r, nil
}

// sliceSizes splits messages into n slices as equal as can be, the larger
// ones first.
func sliceSizes(messages, n int) []int {
	n = max(1, min(n, messages))
	out := make([]int, n)
	for i := range out {
		out[i] = messages / n
		if i < messages%n {
			out[i]++
		}
	}
	return out
}

// sliceOrder returns the order of the stacks in slice k (from 0): as
// given, then reversed, and so on (A B, B A, A B, ...), so that a change of
// the machine's speed during a round weighs alike on every case.
func sliceOrder[T any](order []T, k int) []T {
	out := slices.Clone(order)
	if k%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

// addRun adds the slice r to the run total of the same case: messages,
// errors and wall time add up, CPU per component too; the peaks are the
// largest seen.
func addRun(total, r Run) Run {
	if total.Case == "" {
		total.Case = r.Case
	}
	total.Messages += r.Messages
	total.Errors += r.Errors
	total.FirstErrors = append(total.FirstErrors, r.FirstErrors...)
	total.Elapsed += r.Elapsed
	total.Latencies = append(total.Latencies, r.Latencies...)
	for _, u := range r.Usage {
		i := slices.IndexFunc(total.Usage, func(t Usage) bool { return t.Name == u.Name })
		if i < 0 {
			u.Peaks = slices.Clone(u.Peaks)
			total.Usage = append(total.Usage, u)
			continue
		}
		t := &total.Usage[i]
		t.CPU += u.CPU
		for _, p := range u.Peaks {
			j := slices.IndexFunc(t.Peaks, func(q Peak) bool { return q.Comm == p.Comm })
			if j < 0 {
				t.Peaks = append(t.Peaks, p)
				continue
			}
			t.Peaks[j].HWM = max(t.Peaks[j].HWM, p.HWM)
			t.Peaks[j].Procs = max(t.Peaks[j].Procs, p.Procs)
		}
	}
	return total
}

// runSideBySide runs cases (sideBySide) of one round side by side: every
// case's processes up at once, then each case's share (o.PostfixMessages
// messages, or o.Duration of load) in o.Slices slices, each slice running
// every case in turn (sliceOrder), so that what the rest of the machine
// does falls on all of them alike; one Run per case, the sum of its
// slices. logf reports progress.
func (e *env) runSideBySide(ctx context.Context, cases []Case, o Options, logf func(string, ...any)) (map[string]Run, error) {
	var stacks []*stack
	defer func() {
		for i := len(stacks) - 1; i >= 0; i-- {
			stacks[i].close()
		}
	}()
	for _, c := range cases {
		logf("  up: %s", c.Title)
		s, err := e.setUp(ctx, c, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Title, err)
		}
		stacks = append(stacks, s)
	}
	runs := map[string]Run{}
	d := o.Duration / time.Duration(max(o.Slices, 1))
	for k, n := range sliceSizes(o.PostfixMessages, o.Slices) {
		for _, s := range sliceOrder(stacks, k) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r, err := s.measure(ctx, o, n, d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.c.Title, err)
			}
			runs[s.c.ID] = addRun(runs[s.c.ID], r)
		}
	}
	return runs, nil
}
