package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file is what the fault, overload, operations and soak tests share:
// an SMTP load (one message per SMTP session, as many sessions at once as
// asked), the bookkeeping that proves no message was lost (every message the
// client saw accepted reaches the sink, nothing else does), and what the
// tests measure on a running daemon: its memory from /proc and its
// Prometheus metrics.

// LoadIDHeader names the header field that carries a load message's id, so
// that a delivered copy can be matched with the SMTP client's outcome.
const LoadIDHeader = "X-Load-ID"

// Mail is one message of a load.
type Mail struct {
	ID      string // unique; sent in the LoadIDHeader field
	From    string
	To      []string
	Subject string
	Body    string // lines end in "\n"; the client sends CRLF
}

// SMTPResult is what the SMTP client saw for one message.
type SMTPResult struct {
	ID       string
	Accepted bool   // 250 after the end of DATA
	Code     int    // the refusal's reply code (4xx or 5xx); 0 when accepted or unknown
	Reply    string // the refusal's text
	Stage    string // where it was refused or broke: connect, EHLO, MAIL, RCPT, DATA, end of DATA
	Err      error  // a transport failure: the outcome is unknown
	Elapsed  time.Duration
}

// Refused reports whether the server refused the message with 4xx or 5xx.
func (r SMTPResult) Refused() bool { return r.Code >= 400 && r.Code < 600 }

func (r SMTPResult) String() string {
	switch {
	case r.Accepted:
		return r.ID + ": accepted"
	case r.Refused():
		return fmt.Sprintf("%s: refused at %s: %d %s", r.ID, r.Stage, r.Code, r.Reply)
	}
	return fmt.Sprintf("%s: unknown outcome at %s: %v", r.ID, r.Stage, r.Err)
}

// SMTPTimeout bounds one SMTP session of SendSMTP.
const SMTPTimeout = 60 * time.Second

// SendSMTP sends m to the SMTP server at addr in its own session and reports
// the outcome. A refusal of the only (or every) recipient counts as a refusal
// of the message. It never fails the test: the caller judges the result.
func SendSMTP(ctx context.Context, addr string, m Mail) SMTPResult {
	start := time.Now()
	res := sendSMTP(ctx, addr, m)
	res.ID = m.ID
	res.Elapsed = time.Since(start)
	return res
}

func sendSMTP(ctx context.Context, addr string, m Mail) SMTPResult {
	fail := func(stage string, err error) SMTPResult {
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 400 {
			return SMTPResult{Code: te.Code, Reply: te.Msg, Stage: stage}
		}
		return SMTPResult{Stage: stage, Err: err}
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail("connect", err)
	}
	defer nc.Close()
	deadline := time.Now().Add(SMTPTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = nc.SetDeadline(deadline)
	c, err := smtp.NewClient(nc, hostOf(addr))
	if err != nil {
		return fail("connect", err)
	}
	defer c.Close()
	if err := c.Hello("load.client.test"); err != nil {
		return fail("EHLO", err)
	}
	if err := c.Mail(m.From); err != nil {
		return fail("MAIL", err)
	}
	var rcptErr error
	accepted := 0
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			if rcptErr == nil {
				rcptErr = err
			}
			continue
		}
		accepted++
	}
	if accepted == 0 {
		if rcptErr == nil {
			rcptErr = errors.New("no recipients")
		}
		return fail("RCPT", rcptErr)
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if _, err := io.WriteString(w, m.Text()); err != nil {
		return fail("end of DATA", err)
	}
	if err := w.Close(); err != nil {
		return fail("end of DATA", err)
	}
	_ = c.Quit()
	return SMTPResult{Accepted: true}
}

// Text returns the message as sent: a small header with the id, then the
// body, with CRLF line ends.
func (m Mail) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n%s: %s\r\nMessage-ID: <%s@load.client.test>\r\n\r\n",
		m.From, strings.Join(m.To, ">, <"), m.Subject, LoadIDHeader, m.ID, m.ID)
	b.WriteString(strings.ReplaceAll(strings.TrimSuffix(m.Body, "\n"), "\n", "\r\n"))
	b.WriteString("\r\n")
	return b.String()
}

// LoadOptions configure RunLoad.
type LoadOptions struct {
	Addr     string // the SMTP server
	Prefix   string // message ids are Prefix-N, N from 1
	Sessions int    // SMTP sessions at once (default 1)
	// Messages to send in total; 0 sends until ctx ends.
	Messages int
	// Rate limits the load to this many messages per second over all
	// sessions; 0 sends as fast as the sessions go.
	Rate float64
	// Mail builds message n (from 1); nil sends a small text message to
	// rcpt@example.com.
	Mail func(n int) Mail
	// OnResult, if set, is called for each result as it arrives (from the
	// sending goroutines).
	OnResult func(SMTPResult)
}

// LoadReport is the outcome of RunLoad, one result per message sent.
type LoadReport struct {
	Results []SMTPResult
	Elapsed time.Duration
}

// RunLoad sends messages to o.Addr from o.Sessions concurrent SMTP sessions
// until o.Messages were sent or ctx ends, and returns every outcome in the
// order of the message numbers.
func RunLoad(ctx context.Context, o LoadOptions) LoadReport {
	sessions := max(o.Sessions, 1)
	build := o.Mail
	if build == nil {
		build = func(n int) Mail { return DefaultMail(o.Prefix, n) }
	}
	var (
		mu      sync.Mutex
		next    int
		results = map[int]SMTPResult{}
		wg      sync.WaitGroup
	)
	start := time.Now()
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil || (o.Messages > 0 && next >= o.Messages) {
			return 0, false
		}
		next++
		return next, true
	}
	for range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, ok := take()
				if !ok {
					return
				}
				if o.Rate > 0 {
					due := start.Add(time.Duration(float64(n-1) / o.Rate * float64(time.Second)))
					if wait := time.Until(due); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
							return // its time never came: not sent
						}
					}
				}
				// A message that was begun is finished even when ctx
				// ends meanwhile: its outcome must be known.
				r := SendSMTP(context.WithoutCancel(ctx), o.Addr, build(n))
				if o.OnResult != nil {
					o.OnResult(r)
				}
				mu.Lock()
				results[n] = r
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep := LoadReport{Elapsed: time.Since(start)}
	keys := make([]int, 0, len(results))
	for k := range results {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		rep.Results = append(rep.Results, results[k])
	}
	return rep
}

// DefaultMail is message n of a load with ids prefix-n: one recipient, a
// short text body.
func DefaultMail(prefix string, n int) Mail {
	id := fmt.Sprintf("%s-%d", prefix, n)
	return Mail{
		ID: id, From: "load@example.org", To: []string{"rcpt@example.com"},
		Subject: "load " + id,
		Body:    "This is message " + id + " of a load test.\nIt has a second line.\n",
	}
}

// Counts returns how many messages were accepted, refused and left with an
// unknown outcome.
func (r LoadReport) Counts() (accepted, refused, unknown int) {
	for _, x := range r.Results {
		switch {
		case x.Accepted:
			accepted++
		case x.Refused():
			refused++
		default:
			unknown++
		}
	}
	return
}

// Accepted returns the ids of the accepted messages.
func (r LoadReport) Accepted() map[string]bool {
	ids := map[string]bool{}
	for _, x := range r.Results {
		if x.Accepted {
			ids[x.ID] = true
		}
	}
	return ids
}

// Codes counts the refusals by reply code and stage ("451 at RCPT": 3).
func (r LoadReport) Codes() map[string]int {
	out := map[string]int{}
	for _, x := range r.Results {
		if x.Refused() {
			out[fmt.Sprintf("%d at %s", x.Code, x.Stage)]++
		}
	}
	return out
}

func (r LoadReport) String() string {
	a, f, u := r.Counts()
	return fmt.Sprintf("%d sent in %v: %d accepted, %d refused %v, %d unknown",
		len(r.Results), r.Elapsed.Round(time.Millisecond), a, f, r.Codes(), u)
}

// Delivered waits until the sink holds a copy of every message the report
// says was accepted (ids with the report's prefix), then returns the
// copies by id. The test fails when one is missing after timeout, when a
// message arrives twice, when one arrives that the client saw refused or
// never sent, or when a message's outcome is unknown: delivered + refused
// must equal sent.
func (r LoadReport) Delivered(t testing.TB, sink *Sink, prefix string, timeout time.Duration) map[string]SinkMessage {
	t.Helper()
	sent := map[string]SMTPResult{}
	for _, x := range r.Results {
		sent[x.ID] = x
		if !x.Accepted && !x.Refused() {
			t.Errorf("e2e: load: %v", x)
		}
	}
	want := r.Accepted()
	deadline := time.Now().Add(timeout)
	for {
		got, dups := loadCopies(t, sink, prefix)
		missing := 0
		for id := range want {
			if _, ok := got[id]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			for id := range got {
				if x, ok := sent[id]; !ok {
					t.Errorf("e2e: %s was delivered but never sent", id)
				} else if !x.Accepted {
					t.Errorf("e2e: %s was delivered although the client saw: %v", id, x)
				}
			}
			for _, id := range dups {
				t.Errorf("e2e: %s was delivered more than once", id)
			}
			if missing > 0 {
				var ids []string
				for id := range want {
					if _, ok := got[id]; !ok {
						ids = append(ids, id)
					}
				}
				sort.Strings(ids)
				t.Errorf("e2e: %d accepted message(s) not delivered within %v: %v", missing, timeout, ids)
			}
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadCopies returns the sink's messages whose id starts with prefix, and
// the ids seen more than once.
func loadCopies(t testing.TB, sink *Sink, prefix string) (map[string]SinkMessage, []string) {
	t.Helper()
	msgs, err := sink.Messages()
	if err != nil {
		t.Fatalf("e2e: sink: %v", err)
	}
	got := map[string]SinkMessage{}
	var dups []string
	for _, m := range msgs {
		id := m.Header.Get(LoadIDHeader)
		if !strings.HasPrefix(id, prefix+"-") {
			continue
		}
		if _, ok := got[id]; ok {
			dups = append(dups, id)
		}
		got[id] = m
	}
	return got, dups
}

// ProcStatus is what /proc/PID/status says about a process's memory.
type ProcStatus struct {
	RSS     int64 // VmRSS, bytes
	HWM     int64 // VmHWM (peak RSS), bytes
	Threads int
}

// ReadProcStatus reads /proc/PID/status.
func ReadProcStatus(pid int) (ProcStatus, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ProcStatus{}, err
	}
	defer f.Close()
	var st ProcStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			st.RSS = n << 10
		case "VmHWM":
			st.HWM = n << 10
		case "Threads":
			st.Threads = int(n)
		}
	}
	if st.HWM == 0 {
		return st, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
	}
	return st, sc.Err()
}

// MiB formats a byte count in mebibytes.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Metrics are the samples of a Prometheus text exposition, by series as
// written: `name{label="value",...}` (or just name).
type Metrics map[string]float64

// ScrapeMetrics fetches http://addr/metrics.
func ScrapeMetrics(ctx context.Context, addr string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads the Prometheus text format: one "series value" per
// line, comments skipped.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: bad value in %q", line)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// Sum adds the samples of the metric name whose labels include every
// `key="value"` pair given.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(","+strings.TrimSuffix(rest, "}")+",", ","+l+",") {
				ok = false
				break
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// Has reports whether any series of the metric name exists.
func (m Metrics) Has(name string) bool {
	for series := range m {
		if base, _, _ := strings.Cut(series, "{"); base == name {
			return true
		}
	}
	return false
}

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// and reports whether it did.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
