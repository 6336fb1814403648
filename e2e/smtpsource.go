package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file drives Postfix's own load generator, smtp-source(1), against a
// test Postfix, and counts what became of its messages. smtp-source tells
// little: it sends -m messages over -s sessions and, with -A, writes one
// warning line for each refused command ("<argv0>: warning: recipient
// rejected: 451 4.7.1 ..."), and with -c a running count of the messages
// whose content it sent. A transport failure (lost connection, timeout) is
// fatal to the whole program: the outcome of every message in flight is then
// unknown. So the driver counts from those lines (accepted = messages whose
// content was sent - refusals at the end of data; refused = the rest), and
// a passive tap between smtp-source and Postfix records each SMTP session as
// it passed on the wire: when it began and ended, the reply to the end of
// data with the queue id Postfix gave the message. The two must agree; the
// queue ids then match each delivered copy at the sink (Postfix's Received
// header names it) with one accepted message, since smtp-source puts no id
// of its own in a message.

// SourceOptions configure one run of smtp-source.
type SourceOptions struct {
	Addr     string // the SMTP server, "127.0.0.1:PORT"
	Messages int    // -m, messages in all (default 1), each to one recipient
	Sessions int    // -s, SMTP sessions at once (default 1); one message per session
	// Subject is the subject line (-S) that marks this run's delivered
	// copies at the sink. Required unless File is set.
	Subject string
	// File is a whole message (header and body, LF line ends) that every
	// message sends instead of smtp-source's own (-F); the run's marker is
	// then the subject of the message in it.
	File     string
	Size     int    // -l, payload bytes instead of smtp-source's four lines
	From, To string // -f, -t (default load@example.org, rcpt@example.com)
	// PerSecond paces the load: each session sends one message and waits a
	// second (smtp-source -w 1) before the next, and the sessions run as
	// Spread smtp-source processes started a second/Spread apart, so that
	// about Sessions messages a second arrive evenly over the second rather
	// than in one burst. Messages and Sessions are divided among them.
	PerSecond bool
	Spread    int           // processes of a paced load (default 10)
	Timeout   time.Duration // the whole run; smtp-source is killed after it (default 3 minutes)
}

// SourceSession is one SMTP session of a run as the tap saw it.
type SourceSession struct {
	Start, End time.Time
	// EOD is the reply code to the end of data (0 when no content was
	// sent); Accepted when it was 2xx, with the QueueID Postfix gave.
	EOD      int
	Accepted time.Time
	QueueID  string
	// Refusal is the first 4xx or 5xx reply of the session, 0 if none.
	Refusal int
	// Err is why the tap could not carry the session (its connection to
	// the server failed), if it could not.
	Err error
}

// Duration is how long the session was connected.
func (s SourceSession) Duration() time.Duration { return s.End.Sub(s.Start) }

// SourceReport is what became of one run's messages.
type SourceReport struct {
	Messages int // asked for
	// Accepted and Refused are smtp-source's own counts: messages whose
	// content it sent minus the refusals of the end of data, and the other
	// messages. Refused counts them by code and stage ("451 at recipient").
	Accepted int
	Refused  map[string]int
	Temp     int // refusals with a 4xx code
	Perm     int // refusals with a 5xx code
	// Fatal is smtp-source's fatal error (a transport failure such as "lost
	// connection while sending recipient"), Err its exit status; with
	// either, the outcome of the messages in flight is unknown.
	Fatal   []string
	Err     error
	Other   []string // warnings that are no message's outcome (HELO, RSET)
	Output  string   // smtp-source's standard error
	Args    [][]string
	Subject string
	Elapsed time.Duration
	// Sessions are the tap's records, in the order the sessions began.
	Sessions []SourceSession
}

// Lost returns how many messages have no known outcome: asked for, but
// neither accepted nor refused by smtp-source's account.
func (r SourceReport) Lost() int { return r.Messages - r.Accepted - r.refused() }

func (r SourceReport) refused() int { return r.Temp + r.Perm }

// At returns how many messages were refused at stage ("recipient", "end
// of data", ...), whatever the code.
func (r SourceReport) At(stage string) int {
	n := 0
	for k, v := range r.Refused {
		if strings.HasSuffix(k, " at "+stage) {
			n += v
		}
	}
	return n
}

// QueueIDs returns the queue ids of the messages the tap saw accepted.
func (r SourceReport) QueueIDs() map[string]bool {
	ids := map[string]bool{}
	for _, s := range r.Sessions {
		if s.QueueID != "" {
			ids[s.QueueID] = true
		}
	}
	return ids
}

// Longest returns the longest session.
func (r SourceReport) Longest() time.Duration {
	var d time.Duration
	for _, s := range r.Sessions {
		d = max(d, s.Duration())
	}
	return d
}

func (r SourceReport) String() string {
	s := fmt.Sprintf("smtp-source %q: %d messages in %v: %d accepted, %d refused (%d 4xx, %d 5xx) %v, %d lost; longest session %v",
		r.Subject, r.Messages, r.Elapsed.Round(time.Millisecond), r.Accepted, r.refused(), r.Temp, r.Perm, r.Refused, r.Lost(),
		r.Longest().Round(time.Millisecond))
	if len(r.Fatal) > 0 || r.Err != nil {
		s += fmt.Sprintf("; %v %q", r.Err, r.Fatal)
	}
	return s
}

// Check fails the test unless smtp-source ran to its end and every message
// has an outcome, and its account agrees with what the tap saw: one session
// per message, the same number accepted. (Delivered also wants a queue id
// for each accepted message, which only a Postfix gives.)
func (r SourceReport) Check(t testing.TB) {
	t.Helper()
	if r.Err != nil || len(r.Fatal) > 0 {
		t.Errorf("smtp-source %q: %v %q\n%s", r.Subject, r.Err, r.Fatal, r.Output)
	}
	if len(r.Other) > 0 {
		t.Errorf("smtp-source %q: unexpected warnings %q", r.Subject, r.Other)
	}
	if lost := r.Lost(); lost != 0 {
		t.Errorf("smtp-source %q: %d of %d messages without an outcome (%d accepted, %d refused)", r.Subject, lost, r.Messages, r.Accepted, r.refused())
	}
	for _, s := range r.Sessions {
		if s.Err != nil {
			t.Errorf("smtp-source %q: tap: %v", r.Subject, s.Err)
			break
		}
	}
	if len(r.Sessions) != r.Messages {
		t.Errorf("smtp-source %q: the tap saw %d SMTP sessions for %d messages", r.Subject, len(r.Sessions), r.Messages)
	}
	if n := r.tapAccepted(); n != r.Accepted {
		t.Errorf("smtp-source %q counted %d accepted, the tap saw %d", r.Subject, r.Accepted, n)
	}
}

// tapAccepted counts the sessions whose end of data the tap saw accepted.
func (r SourceReport) tapAccepted() int {
	n := 0
	for _, s := range r.Sessions {
		if !s.Accepted.IsZero() {
			n++
		}
	}
	return n
}

// Delivered waits until the sink holds a copy of every message of the run
// that was accepted (matched by Postfix's queue id in its Received header),
// and returns them by queue id. The test fails when one is missing after
// timeout, when a message of the run arrives that was not accepted or
// arrives twice, or when the run's account does not hold (Check).
func (r SourceReport) Delivered(t testing.TB, sink *Sink, timeout time.Duration) map[string]SinkMessage {
	t.Helper()
	r.Check(t)
	want := r.QueueIDs()
	if len(want) != r.tapAccepted() {
		t.Errorf("smtp-source %q: %d messages accepted, %d with a queue id", r.Subject, r.tapAccepted(), len(want))
	}
	deadline := time.Now().Add(timeout)
	for {
		got, dups, stray := r.copies(t, sink, want)
		missing := 0
		for id := range want {
			if _, ok := got[id]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			for _, id := range dups {
				t.Errorf("smtp-source %q: %s was delivered more than once", r.Subject, id)
			}
			for _, id := range stray {
				t.Errorf("smtp-source %q: a message with queue id %q was delivered but not seen accepted", r.Subject, id)
			}
			if missing > 0 {
				var ids []string
				for id := range want {
					if _, ok := got[id]; !ok {
						ids = append(ids, id)
					}
				}
				sort.Strings(ids)
				t.Errorf("smtp-source %q: %d accepted message(s) not delivered within %v: %v", r.Subject, missing, timeout, ids)
			}
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postfixQueueID finds the queue id in Postfix's Received header.
var postfixQueueID = regexp.MustCompile(`\(Postfix\) with E?SMTP\S* id ([0-9A-Za-z]+)`)

// copies returns the sink's copies of the run's messages (by subject) by
// queue id, the ids seen more than once, and those not in want.
func (r SourceReport) copies(t testing.TB, sink *Sink, want map[string]bool) (got map[string]SinkMessage, dups, stray []string) {
	t.Helper()
	msgs, err := sink.Messages()
	if err != nil {
		t.Fatalf("e2e: sink: %v", err)
	}
	got = map[string]SinkMessage{}
	for _, m := range msgs {
		if !strings.Contains(m.Header.Get("Subject"), r.Subject) {
			continue
		}
		id := ""
		for _, rcv := range m.Header["Received"] {
			if sm := postfixQueueID.FindStringSubmatch(rcv); sm != nil {
				id = sm[1]
				break
			}
		}
		switch _, seen := got[id]; {
		case seen:
			dups = append(dups, id)
		case !want[id]:
			stray = append(stray, id)
		}
		got[id] = m
	}
	return got, dups, stray
}

// SourceRun is a run of smtp-source under way.
type SourceRun struct {
	o        SourceOptions
	tap      *sourceTap
	cancel   context.CancelFunc
	done     chan struct{}
	start    time.Time
	end      time.Time // when the last process ended
	procs    []*sourceProc
	waitOnce sync.Once
	report   SourceReport
}

type sourceProc struct {
	args           []string
	messages       int
	stdout, stderr bytes.Buffer
	err            error
}

// StartSource starts smtp-source as o says, through a tap, and returns at
// once. The run is killed when o.Timeout passes or the test ends.
func StartSource(t testing.TB, o SourceOptions) *SourceRun {
	t.Helper()
	bin := RequirePeer(t, "smtp-source")
	o.Messages = max(o.Messages, 1)
	o.Sessions = max(o.Sessions, 1)
	if o.From == "" {
		o.From = "load@example.org"
	}
	if o.To == "" {
		o.To = "rcpt@example.com"
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.File != "" {
		m, err := readMessageSubject(o.File)
		if err != nil {
			t.Fatalf("e2e: smtp-source -F %s: %v", o.File, err)
		}
		o.Subject = m
	}
	if o.Subject == "" {
		t.Fatal("e2e: smtp-source: a run needs a subject to find its copies by")
	}
	tap, err := startSourceTap(o.Addr)
	if err != nil {
		t.Fatalf("e2e: smtp-source tap: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	r := &SourceRun{o: o, tap: tap, cancel: cancel, done: make(chan struct{}), start: time.Now()}
	t.Cleanup(func() {
		cancel()
		r.Wait()
	})

	// The processes: one, or Spread of a paced load, each with its share
	// of the messages and sessions.
	n := 1
	if o.PerSecond {
		n = o.Spread
		if n <= 0 {
			n = 10
		}
		n = min(n, o.Sessions, o.Messages)
	}
	base := []string{"-A", "-c", "-M", "load.client.test", "-f", o.From, "-t", o.To}
	if o.File != "" {
		base = append(base, "-F", o.File)
	} else {
		base = append(base, "-S", o.Subject)
		if o.Size > 0 {
			base = append(base, "-l", strconv.Itoa(o.Size))
		}
	}
	if o.PerSecond {
		base = append(base, "-w", "1")
	}
	for i := range n {
		share := func(total int) int { return total/n + btoi(i < total%n) }
		p := &sourceProc{messages: share(o.Messages)}
		p.args = append(append([]string{bin}, base...), "-m", strconv.Itoa(p.messages), "-s", strconv.Itoa(share(o.Sessions)), tap.Addr)
		r.procs = append(r.procs, p)
	}
	var wg sync.WaitGroup
	for i, p := range r.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.PerSecond && i > 0 {
				select {
				case <-time.After(time.Duration(i) * time.Second / time.Duration(n)):
				case <-ctx.Done():
					p.err = ctx.Err()
					return
				}
			}
			cmd := exec.CommandContext(ctx, p.args[0], p.args[1:]...)
			cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			cmd.WaitDelay = 2 * time.Second
			p.err = cmd.Run()
		}()
	}
	go func() {
		wg.Wait()
		r.end = time.Now()
		tap.close()
		close(r.done)
	}()
	return r
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Done is closed when every smtp-source process of the run has ended.
func (r *SourceRun) Done() <-chan struct{} { return r.done }

// Begun returns how many SMTP sessions (one a message) have begun so far.
func (r *SourceRun) Begun() int { return int(r.tap.begun.Load()) }

// InFlight returns how many SMTP sessions are connected now.
func (r *SourceRun) InFlight() int {
	n := 0
	for _, s := range r.tap.snapshot() {
		if s.End.IsZero() {
			n++
		}
	}
	return n
}

// Accepted returns how many messages the tap has seen accepted so far.
func (r *SourceRun) Accepted() int { return int(r.tap.accepted.Load()) }

// Wait waits until every smtp-source process has ended and returns the
// report.
func (r *SourceRun) Wait() SourceReport {
	r.waitOnce.Do(func() {
		<-r.done
		r.cancel()
		rep := SourceReport{Messages: r.o.Messages, Subject: r.o.Subject, Refused: map[string]int{},
			Elapsed: r.end.Sub(r.start), Sessions: r.tap.snapshot()}
		var out strings.Builder
		for _, p := range r.procs {
			rep.Args = append(rep.Args, p.args)
			c := parseSourceOutput(p.stdout.String(), p.stderr.String())
			out.WriteString(p.stderr.String())
			// The messages whose content was sent, less those refused at
			// the end of data, were accepted; the rest of the process's
			// share were refused before, or are lost when it failed.
			rep.Accepted += c.data - c.eodRefused
			for k, v := range c.refused {
				rep.Refused[k] += v
			}
			rep.Temp += c.temp
			rep.Perm += c.perm
			rep.Fatal = append(rep.Fatal, c.fatal...)
			rep.Other = append(rep.Other, c.other...)
			if p.err != nil && rep.Err == nil {
				rep.Err = p.err
			}
		}
		rep.Output = out.String()
		r.report = rep
	})
	return r.report
}

// RunSource runs smtp-source as o says and returns its report.
func RunSource(t testing.TB, o SourceOptions) SourceReport {
	t.Helper()
	return StartSource(t, o).Wait()
}

// sourceCounts is what one smtp-source process reported.
type sourceCounts struct {
	data       int            // messages whose content was sent (the -c counter)
	eodRefused int            // refusals of the end of data
	refused    map[string]int // message refusals by "code at stage"
	temp, perm int
	fatal      []string
	other      []string
}

// sourceWarning matches smtp-source's report of a refused command with -A:
// "<argv0>: warning: <stage> rejected: <code> <text>". Multi-line replies
// come as one line (smtp-source joins them and its logger censors the line
// break).
var sourceWarning = regexp.MustCompile(`^\S+: warning: (.+) rejected: (\d{3}) (.*)$`)

// parseSourceOutput reads the standard output (-c counter) and error of one
// smtp-source process. A message is refused once: at MAIL ("sender"), at
// its only RCPT ("recipient"), at DATA ("data"), at the end of data, or at
// HELO with 421 or 521, after which smtp-source closes the session and the
// message is spent. (So the driver sends one recipient per message: with
// several, a refused RCPT is no message's outcome.) Accepted are the
// messages whose content was sent less those refused at the end of data.
func parseSourceOutput(stdout, stderr string) sourceCounts {
	c := sourceCounts{refused: map[string]int{}}
	// "-c" writes "1\r2\r3\r...N\r\n": the last number is the count.
	if f := strings.FieldsFunc(stdout, func(r rune) bool { return r == '\r' || r == '\n' }); len(f) > 0 {
		c.data, _ = strconv.Atoi(f[len(f)-1])
	}
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if _, rest, ok := strings.Cut(line, ": fatal: "); ok {
			c.fatal = append(c.fatal, rest)
			continue
		}
		m := sourceWarning.FindStringSubmatch(line)
		if m == nil {
			if strings.TrimSpace(line) != "" {
				c.other = append(c.other, line)
			}
			continue
		}
		stage, code := m[1], m[2]
		switch stage {
		case "sender", "recipient", "data", "end of data":
		case "HELO", "LHLO":
			if code != "421" && code != "521" {
				c.other = append(c.other, line)
				continue
			}
		default:
			c.other = append(c.other, line)
			continue
		}
		if stage == "end of data" {
			c.eodRefused++
		}
		c.refused[code+" at "+stage]++
		if code[0] == '4' {
			c.temp++
		} else {
			c.perm++
		}
	}
	return c
}

// readMessageSubject returns the Subject field of the message file.
func readMessageSubject(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	head, _, _ := strings.Cut(string(b), "\n\n")
	for _, line := range strings.Split(head, "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Subject") {
			return strings.TrimSpace(value), nil
		}
	}
	return "", errors.New("no Subject field to find the delivered copies by")
}

// ---------------------------------------------------------------------------
// The tap: a loopback relay between smtp-source and the SMTP server that
// records each session and the server's replies as they pass.

type sourceTap struct {
	Addr     string
	target   string
	ln       net.Listener
	begun    atomic.Int64
	accepted atomic.Int64

	mu       sync.Mutex
	sessions []*SourceSession
	wg       sync.WaitGroup
}

func startSourceTap(target string) (*sourceTap, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tp := &sourceTap{Addr: ln.Addr().String(), target: target, ln: ln}
	tp.wg.Add(1)
	go func() {
		defer tp.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tp.wg.Add(1)
			go func() {
				defer tp.wg.Done()
				tp.relay(c)
			}()
		}
	}()
	return tp, nil
}

// close stops listening and waits for the sessions to end (smtp-source
// has exited, so its side is closed).
func (tp *sourceTap) close() {
	_ = tp.ln.Close()
	tp.wg.Wait()
}

func (tp *sourceTap) snapshot() []SourceSession {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out := make([]SourceSession, len(tp.sessions))
	for i, s := range tp.sessions {
		out[i] = *s
	}
	return out
}

func (tp *sourceTap) update(f func()) {
	tp.mu.Lock()
	f()
	tp.mu.Unlock()
}

// relay carries one session: the client's bytes as they come, the server's
// line by line, noting the reply codes.
func (tp *sourceTap) relay(client net.Conn) {
	s := &SourceSession{Start: time.Now()}
	tp.update(func() { tp.sessions = append(tp.sessions, s) })
	tp.begun.Add(1)
	defer func() {
		end := time.Now()
		tp.update(func() { s.End = end })
	}()
	defer client.Close()
	server, err := net.DialTimeout("tcp", tp.target, 10*time.Second)
	if err != nil {
		tp.update(func() { s.Err = err })
		return // smtp-source sees the connection closed: a fatal error
	}
	defer server.Close()
	go func() {
		// smtp-source closes its connection whole, after the reply to
		// QUIT or when it dies: there is no one left to forward to.
		_, _ = io.Copy(server, client)
		_ = server.Close()
	}()
	br := bufio.NewReader(server)
	afterData := false
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if _, werr := io.WriteString(client, line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		code, final := replyLine(line)
		if !final {
			continue
		}
		now := time.Now()
		switch {
		case code == 354:
			afterData = true
		case afterData:
			afterData = false
			tp.update(func() {
				s.EOD = code
				if code/100 == 2 {
					s.Accepted = now
					if _, id, ok := strings.Cut(line, "queued as "); ok {
						s.QueueID = strings.TrimSpace(id)
					}
				}
			})
			if code/100 == 2 {
				tp.accepted.Add(1)
			}
		}
		if code >= 400 {
			tp.update(func() {
				if s.Refusal == 0 {
					s.Refusal = code
				}
			})
		}
	}
}

// replyLine returns an SMTP reply line's code and whether it is the last
// line of its reply.
func replyLine(line string) (int, bool) {
	line = strings.TrimRight(line, "\r\n")
	if len(line) < 3 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
		return 0, false
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil {
		return 0, false
	}
	return code, len(line) == 3 || line[3] == ' '
}
