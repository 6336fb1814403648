package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"
)

// LoadOptions configure one load run against a milter: the load generator
// acts as the MTA with go-milter's client, like Postfix does for
// smtp-source's sessions (one milter connection per SMTP session).
type LoadOptions struct {
	Addr       string        // host:port of the milter
	Sessions   int           // concurrent milter connections; 0 means 1
	Duration   time.Duration // start no message after this; 0 means until Messages
	Messages   int           // send at most this many; 0 means until Duration
	PerSession int           // messages per milter connection; 0 means 1
	Mix        Mix           // message shapes; nil means 10KiB/3
	Timeout    time.Duration // per milter reply; 0 means 60s
	// Hold opens every session (negotiation, CONNECT, HELO) before the
	// first message is sent, so that all Sessions are open at once; each
	// session then sends PerSession messages and the run ends.
	Hold bool
}

func (o LoadOptions) withDefaults() LoadOptions {
	o.Sessions = max(o.Sessions, 1)
	o.PerSession = max(o.PerSession, 1)
	if o.Mix == nil {
		o.Mix = defaultMix()
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	return o
}

// LoadResult is what a load run measured.
type LoadResult struct {
	Messages    int             // messages that ended as expected (accepted)
	Modified    int             // of those, messages the milter changed
	Replaced    int             // of those, messages whose body it replaced
	Errors      int             // messages or sessions that failed
	FirstErrors []string        // the first few errors
	Elapsed     time.Duration   // wall time of the run
	Latencies   []time.Duration // per good message, see RunLoad
	Bytes       int64           // message bytes sent in good messages
}

// maxErrorSamples bounds LoadResult.FirstErrors.
const maxErrorSamples = 5

// ErrUnexpectedReply is a milter reply other than continue (or accept at
// end of message); every generated message should pass every case.
var ErrUnexpectedReply = errors.New("unexpected milter reply")

// RunLoad runs o until its duration passes or its messages are sent, or
// ctx ends. A message's latency runs from opening its milter connection
// (or, on a reused or held connection, from MAIL) to the end-of-message
// reply.
func RunLoad(ctx context.Context, o LoadOptions) LoadResult {
	o = o.withDefaults()
	client := gomilter.NewClient("tcp", o.Addr,
		gomilter.WithDialer(packetDialer{timeout: 10 * time.Second}),
		gomilter.WithReadTimeout(o.Timeout), gomilter.WithWriteTimeout(o.Timeout))
	g := &generator{o: o, client: client, total: uint64(o.Mix.Total())}
	if o.Duration > 0 {
		g.deadline = time.Now().Add(o.Duration)
	}
	if o.Hold {
		g.opened.Add(o.Sessions)
		g.release = make(chan struct{})
		go func() { g.opened.Wait(); close(g.release) }()
	}
	results := make([]LoadResult, o.Sessions)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range o.Sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := worker{g: g, id: i, res: &results[i]}
			w.run(ctx)
		}()
	}
	wg.Wait()
	var r LoadResult
	r.Elapsed = time.Since(start)
	for _, w := range results {
		r.Messages += w.Messages
		r.Modified += w.Modified
		r.Replaced += w.Replaced
		r.Errors += w.Errors
		r.Bytes += w.Bytes
		r.Latencies = append(r.Latencies, w.Latencies...)
		for _, e := range w.FirstErrors {
			if len(r.FirstErrors) < maxErrorSamples {
				r.FirstErrors = append(r.FirstErrors, e)
			}
		}
	}
	return r
}

// generator is the state the workers of one run share.
type generator struct {
	o        LoadOptions
	client   *gomilter.Client
	total    uint64
	deadline time.Time
	started  atomic.Uint64
	opened   sync.WaitGroup // Hold: sessions still opening
	release  chan struct{}  // Hold: closed when all sessions are open
}

// next returns the sequence number of the next message, or false when the
// run is over.
func (g *generator) next(ctx context.Context) (uint64, bool) {
	if ctx.Err() != nil || (!g.deadline.IsZero() && time.Now().After(g.deadline)) {
		return 0, false
	}
	seq := g.started.Add(1)
	if g.o.Messages > 0 && seq > uint64(g.o.Messages) {
		return 0, false
	}
	return seq, true
}

// worker runs one milter connection after the other.
type worker struct {
	g   *generator
	id  int
	res *LoadResult
}

func (w *worker) fail(err error) {
	w.res.Errors++
	if len(w.res.FirstErrors) < maxErrorSamples {
		w.res.FirstErrors = append(w.res.FirstErrors, err.Error())
	}
}

func (w *worker) run(ctx context.Context) {
	if w.g.o.Hold {
		w.held(ctx)
		return
	}
	for {
		seq, ok := w.g.next(ctx)
		if !ok {
			return
		}
		t0 := time.Now()
		s, macros, err := w.open()
		if err != nil {
			w.fail(err)
			continue
		}
		for i := 0; ; i++ {
			if err := w.message(s, macros, seq, t0); err != nil {
				w.fail(err)
				break
			}
			if i+1 >= w.g.o.PerSession {
				break
			}
			if seq, ok = w.g.next(ctx); !ok {
				break
			}
			t0 = time.Now()
		}
		_ = s.Close()
	}
}

// held opens the session, waits until every worker has opened its own,
// and then sends PerSession messages.
func (w *worker) held(ctx context.Context) {
	s, macros, err := w.open()
	w.g.opened.Done()
	if err != nil {
		w.fail(err)
		return
	}
	defer s.Close()
	select {
	case <-w.g.release:
	case <-ctx.Done():
		return
	}
	for range w.g.o.PerSession {
		seq, ok := w.g.next(ctx)
		if !ok {
			return
		}
		if err := w.message(s, macros, seq, time.Now()); err != nil {
			w.fail(err)
			return
		}
	}
}

// open connects, negotiates and sends CONNECT and HELO with the macros
// Postfix would send.
func (w *worker) open() (*gomilter.ClientSession, *gomilter.MacroBag, error) {
	ip := "192.0.2." + strconv.Itoa(w.id%250+1)
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAFQDN, "mx.bench.test")
	macros.Set(gomilter.MacroDaemonName, "mx.bench.test")
	macros.Set(gomilter.MacroMTAVersion, "3.7.11")
	macros.Set(gomilter.MacroClientAddr, ip)
	macros.Set(gomilter.MacroClientName, "client.bench.test")
	macros.Set(gomilter.MacroIfAddr, "127.0.0.1")
	s, err := w.g.client.Session(macros)
	if err != nil {
		return nil, nil, err
	}
	if err := expect("connect")(s.Conn("client.bench.test", gomilter.FamilyInet, uint16(40000+w.id%20000), ip)); err != nil {
		_ = s.Close()
		return nil, nil, err
	}
	if err := expect("helo")(s.Helo("client.bench.test")); err != nil {
		_ = s.Close()
		return nil, nil, err
	}
	return s, macros, nil
}

// message sends one transaction and records it.
func (w *worker) message(s *gomilter.ClientSession, macros *gomilter.MacroBag, seq uint64, t0 time.Time) error {
	m := NewMessage(w.g.o.Mix.Pick(int(seq%w.g.total)), seq)
	macros.Set(gomilter.MacroQueueId, fmt.Sprintf("B%09X", seq))
	macros.Set(gomilter.MacroMailAddr, m.From)
	if err := expect("mail")(s.Mail(m.From, "")); err != nil {
		return err
	}
	for _, r := range m.Rcpts {
		macros.Set(gomilter.MacroRcptAddr, r)
		if err := expect("rcpt")(s.Rcpt(r, "")); err != nil {
			return err
		}
	}
	if err := expect("data")(s.DataStart()); err != nil {
		return err
	}
	lead := ""
	if s.ProtocolOption(gomilter.OptHeaderLeadingSpace) {
		lead = " " // Postfix keeps the space after the colon then
	}
	for _, f := range m.Header {
		if err := expect("header")(s.HeaderField(f.Name, lead+f.Value, nil)); err != nil {
			return err
		}
	}
	if err := expect("eoh")(s.HeaderEnd()); err != nil {
		return err
	}
	mods, act, err := s.BodyReadFrom(m.Body())
	if err != nil {
		return fmt.Errorf("end of message: %w", err)
	}
	if act.Type != gomilter.ActionAccept && act.Type != gomilter.ActionContinue {
		return fmt.Errorf("%w at end of message: %s", ErrUnexpectedReply, describe(act))
	}
	w.res.Latencies = append(w.res.Latencies, time.Since(t0))
	w.res.Messages++
	w.res.Bytes += m.Size()
	if len(mods) > 0 {
		w.res.Modified++
	}
	for _, m := range mods {
		if m.Type == gomilter.ActionReplaceBody {
			w.res.Replaced++
			break
		}
	}
	return nil
}

// expect returns a check of a client call at stage that turns an error,
// or a reply other than continue, into an error naming the stage.
func expect(stage string) func(*gomilter.Action, error) error {
	return func(act *gomilter.Action, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", stage, err)
		}
		if act.Type != gomilter.ActionContinue {
			return fmt.Errorf("%w at %s: %s", ErrUnexpectedReply, stage, describe(act))
		}
		return nil
	}
}

// describe names a milter reply for an error message.
func describe(act *gomilter.Action) string {
	names := map[gomilter.ActionType]string{
		gomilter.ActionAccept: "accept", gomilter.ActionContinue: "continue",
		gomilter.ActionDiscard: "discard", gomilter.ActionReject: "reject",
		gomilter.ActionTempFail: "tempfail", gomilter.ActionSkip: "skip",
		gomilter.ActionRejectWithCode: "reply",
	}
	name, ok := names[act.Type]
	if !ok {
		name = "action " + strconv.Itoa(int(act.Type))
	}
	if act.SMTPReply != "" {
		return name + " " + strings.TrimSpace(act.SMTPReply)
	}
	return name
}
