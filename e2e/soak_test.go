//go:build soak

package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The soak test is not part of make test: it runs with the build tag soak,
// for OPES_SOAK (default 10m), from "make soak". It sends a steady load
// through a real Postfix, opes-milter and opes-callout, all on loopback,
// and checks that after a warm-up neither daemon's resident memory nor its
// goroutine count grows by more than 10 %, and that every message was
// delivered or refused: delivered + refused = sent.

// soakSample is one measurement of both daemons.
type soakSample struct {
	at                 time.Duration
	milterRSS          int64
	milterGoroutines   float64
	calloutRSS         int64
	calloutGoroutines  float64
	sent               int
	inFlight, sessions float64
}

func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if v := os.Getenv("OPES_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OPES_SOAK=%q: %v", v, err)
		}
		duration = d
	}
	rate := 10.0
	if v := os.Getenv("OPES_SOAK_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			t.Fatalf("OPES_SOAK_RATE=%q: want messages per second", v)
		}
		rate = r
	}
	warmup := min(2*time.Minute, duration/5)
	const every = 10 * time.Second

	milterMetrics, calloutMetrics := FreeAddr(t), FreeAddr(t)
	// The OCP connections stay open for the whole run (they would close
	// after 60 s without a transaction and open again with the load): a
	// pool that breathes is not a leak, but its goroutines would blur the
	// count.
	op := startOpesEdited(t, false, metricsAt(milterMetrics), metricsAt(calloutMetrics),
		configEdit{`idle_timeout = "60s"`, `idle_timeout = "1h"`},
		configEdit{`idle_timeout = "300s"`, `idle_timeout = "1h"`})
	pf := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()})

	// The mix: mostly small text messages, every 10th one with 32 KiB of
	// body, every 25th one to a recipient the recipient-policy service
	// refuses (550 at RCPT), every 40th one with an .exe attachment that
	// the attachment-filter service removes.
	build := func(n int) Mail {
		m := DefaultMail("soak", n)
		switch {
		case n%25 == 0:
			m.To = []string{"blocked@example.com"}
		case n%40 == 0:
			m.Body = "--b\nContent-Type: text/plain\n\nsee attachment\n--b\nContent-Type: application/octet-stream; name=x.exe\n" +
				"Content-Disposition: attachment; filename=x.exe\nContent-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAA\n--b--\n"
		case n%10 == 0:
			m.Body += strings.Repeat("0123456789abcdef 0123456789abcdef 0123456789abcdef 0123456789\n", 512)
		}
		return m
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var sent atomic.Int64
	reports := make(chan LoadReport, 1)
	start := time.Now()
	go func() {
		reports <- RunLoad(ctx, LoadOptions{Addr: pf.SMTPAddr, Prefix: "soak", Sessions: 8, Rate: rate, Mail: build,
			OnResult: func(SMTPResult) { sent.Add(1) }})
	}()

	measure := func() soakSample {
		ms, err := ReadProcStatus(op.Milter.Pid())
		if err != nil {
			t.Fatalf("opes-milter: %v\n%s", err, op.Milter.Output())
		}
		cs, err := ReadProcStatus(op.Callout.Pid())
		if err != nil {
			t.Fatalf("opes-callout: %v\n%s", err, op.Callout.Output())
		}
		mm, cm := scrape(t, milterMetrics), scrape(t, calloutMetrics)
		s := soakSample{
			at: time.Since(start), milterRSS: ms.RSS, milterGoroutines: mm.Sum("go_goroutines"),
			calloutRSS: cs.RSS, calloutGoroutines: cm.Sum("go_goroutines"), sent: int(sent.Load()),
			inFlight: mm.Sum("opes_milter_ocp_transactions_in_flight"), sessions: mm.Sum("opes_milter_milter_sessions"),
		}
		t.Logf("%6s sent %6d  opes-milter RSS %s, %3.0f goroutines (%2.0f sessions, %2.0f transactions)  opes-callout RSS %s, %3.0f goroutines",
			s.at.Round(time.Second), s.sent, MiB(s.milterRSS), s.milterGoroutines, s.sessions, s.inFlight, MiB(s.calloutRSS), s.calloutGoroutines)
		return s
	}
	var samples []soakSample
	tick := time.NewTicker(every)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			samples = append(samples, measure())
		}
	}
	rep := <-reports
	got := rep.Delivered(t, pf.Sink, "soak", 2*time.Minute)
	accepted, refused, unknown := rep.Counts()
	half := 0
	for _, m := range got {
		if a := adaptation(m); a != "adapted" {
			half++
			if half <= 3 {
				t.Errorf("%s: %s", m.Header.Get(LoadIDHeader), a)
			}
		}
	}
	var lat []time.Duration
	for _, r := range rep.Results {
		lat = append(lat, r.Elapsed)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Millisecond) }
	mhwm, _ := ReadProcStatus(op.Milter.Pid())
	chwm, _ := ReadProcStatus(op.Callout.Pid())

	t.Logf("soak: %v at %.0f msg/s offered: %d sent (%.1f msg/s), %d delivered, %d refused %v, %d unknown; SMTP session p50 %v, p99 %v, max %v",
		duration, rate, len(rep.Results), float64(len(rep.Results))/rep.Elapsed.Seconds(), len(got), refused, rep.Codes(), unknown,
		pct(0.5), pct(0.99), lat[len(lat)-1].Round(time.Millisecond))
	if len(got)+refused != len(rep.Results) || accepted != len(got) {
		t.Errorf("delivered %d + refused %d != sent %d", len(got), refused, len(rep.Results))
	}

	// At rest: the load is over and every session has ended.
	var rest soakSample
	if !Eventually(30*time.Second, func() bool {
		m := scrape(t, milterMetrics)
		return m.Sum("opes_milter_milter_sessions") == 0 && m.Sum("opes_milter_ocp_transactions_in_flight") == 0
	}) {
		t.Errorf("opes-milter still has sessions or transactions 30 s after the load")
	}
	// The lowest of a few samples: a scrape, or a goroutine finishing its
	// session, must not count as growth.
	for i := range 5 {
		time.Sleep(500 * time.Millisecond)
		s := measure()
		if i == 0 {
			rest = s
		}
		rest.milterRSS, rest.calloutRSS = min(rest.milterRSS, s.milterRSS), min(rest.calloutRSS, s.calloutRSS)
		rest.milterGoroutines = min(rest.milterGoroutines, s.milterGoroutines)
		rest.calloutGoroutines = min(rest.calloutGoroutines, s.calloutGoroutines)
	}

	var base, final []soakSample
	for _, s := range samples {
		switch {
		case s.at > warmup && s.at <= warmup+time.Minute:
			base = append(base, s)
		case s.at > duration-time.Minute:
			final = append(final, s)
		}
	}
	final = append(final, rest)
	if len(base) == 0 {
		t.Fatalf("too short to judge growth: no sample in the minute after the %v warm-up", warmup)
	}
	mib := func(v float64) string { return MiB(int64(v)) }
	count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	growth := func(name string, b, f float64, unit func(float64) string) {
		g := (f - b) / b * 100
		t.Logf("%s: %s after the warm-up, %s at the end: %+.1f %%", name, unit(b), unit(f), g)
		if g > 10 {
			t.Errorf("%s grew by %.1f %% after the warm-up, more than 10 %%", name, g)
		}
	}
	// Memory: the highest sample of the minute after the warm-up against
	// the highest of the last minute and at rest. Goroutines: the count at
	// rest against the lowest of the minute after the warm-up (idle
	// sessions come and go with the load; a leak stays).
	peak := func(ss []soakSample, v func(soakSample) float64) float64 {
		var m float64
		for _, s := range ss {
			m = max(m, v(s))
		}
		return m
	}
	floor := func(ss []soakSample, v func(soakSample) float64) float64 {
		m := v(ss[0])
		for _, s := range ss {
			m = min(m, v(s))
		}
		return m
	}
	milterRSS := func(s soakSample) float64 { return float64(s.milterRSS) }
	calloutRSS := func(s soakSample) float64 { return float64(s.calloutRSS) }
	milterG := func(s soakSample) float64 { return s.milterGoroutines }
	calloutG := func(s soakSample) float64 { return s.calloutGoroutines }
	growth("opes-milter RSS", peak(base, milterRSS), peak(final, milterRSS), mib)
	growth("opes-callout RSS", peak(base, calloutRSS), peak(final, calloutRSS), mib)
	growth("opes-milter goroutines", floor(base, milterG), rest.milterGoroutines, count)
	growth("opes-callout goroutines", floor(base, calloutG), rest.calloutGoroutines, count)
	t.Logf("peak RSS: opes-milter %s, opes-callout %s", MiB(mhwm.HWM), MiB(chwm.HWM))
}
