package milter

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
)

// event names an MTA event, for reply rules and logs.
type event int

const (
	evConnect event = iota
	evHelo
	evMail
	evRcpt
	evData
	evHeader
	evEOH
	evBody
	evEOM
	evAbort
	evClose
)

func (e event) String() string {
	return [...]string{"connect", "helo", "mail", "rcpt", "data", "header",
		"eoh", "body", "eom", "abort", "close"}[e]
}

// skippable reports whether SMFIR_SKIP is a legal answer to e.
func (e event) skippable() bool { return e == evRcpt || e == evHeader || e == evBody }

// adapter is the go-milter Milter of one MTA connection. go-milter calls
// it from one goroutine; it drives one bridge.Session.
type adapter struct {
	gomilter.NoOpMilter
	srv      *Server
	logger   *slog.Logger
	req      bridge.Requirements
	version  uint32
	protocol gomilter.OptProtocol
	ctx      context.Context
	cancel   context.CancelFunc

	sess    bridge.Session
	refused error // NewSession's error: every event gets 451 4.3.2
	postfix bool  // macro v names Postfix: PROGRESS is fine at any stage
}

var _ gomilter.Milter = (*adapter)(nil)

// newAdapter is go-milter's NewMilterFunc, called after negotiation.
func (s *Server) newAdapter(version uint32, _ gomilter.OptAction, protocol gomilter.OptProtocol, _ gomilter.DataSize) gomilter.Milter {
	s.track.adapterStart()
	ctx, cancel := context.WithCancel(s.ctx)
	return &adapter{
		srv: s, logger: s.logger, req: s.plan.req,
		version: version, protocol: protocol,
		ctx: ctx, cancel: cancel,
	}
}

// open starts the bridge session unless one is running or was refused.
func (a *adapter) open(m gomilter.Modifier) {
	if a.sess != nil || a.refused != nil {
		return
	}
	v := m.Get(gomilter.MacroMTAVersion)
	a.postfix = strings.Contains(v, "Postfix")
	sess, err := a.newSession()
	if err != nil {
		a.refused = err
		a.logger.Warn("milter: session refused, answering 451 4.3.2", "err", err, "mta", v)
		return
	}
	a.sess = sess
}

func (a *adapter) newSession() (sess bridge.Session, err error) {
	defer func() {
		if p := recover(); p != nil {
			a.logger.Error("milter: panic in NewSession", "panic", p, "stack", string(debug.Stack()))
			sess, err = nil, fmt.Errorf("milter: NewSession panicked: %v", p)
		}
	}()
	sess, err = a.srv.h.NewSession(a.ctx, replies(a.protocol))
	if err == nil && sess == nil {
		err = fmt.Errorf("milter: NewSession returned no session")
	}
	return sess, err
}

// closeSession ends the bridge session, if any.
func (a *adapter) closeSession(m gomilter.Modifier) {
	if a.sess != nil {
		a.guard(evClose, m, nil, func(context.Context, bridge.Macros) bridge.Reply {
			a.sess.Close()
			return bridge.Reply{}
		})
	}
	a.sess, a.refused = nil, nil
}

// handle runs one replying event: refused sessions get 451 4.3.2, events
// the bridge did not ask for get Continue (Skip where legal), the others
// go to fn with panics recovered.
func (a *adapter) handle(ev event, want bool, m gomilter.Modifier,
	fn func(ctx context.Context, mac bridge.Macros) bridge.Reply,
) (*gomilter.Response, error) {
	a.open(m)
	if a.refused != nil {
		return a.srv.refusal, nil
	}
	if !want {
		if ev.skippable() && a.protocol&gomilter.OptSkip != 0 {
			return gomilter.RespSkip, nil
		}
		return gomilter.RespContinue, nil
	}
	progress := m.Progress
	if !a.postfix { // Sendmail takes PROGRESS only at end of message
		progress = nil
	}
	return a.response(ev, a.guard(ev, m, progress, fn)), nil
}

// guard calls fn with the session context and m's macros, sending keep-alive
// PROGRESS packets while it runs (when progress is not nil and an interval
// is configured). A panic is logged with its stack and becomes TempFail.
func (a *adapter) guard(ev event, m gomilter.Modifier, progress func() error,
	fn func(ctx context.Context, mac bridge.Macros) bridge.Reply,
) (r bridge.Reply) {
	stop := a.keepAlive(progress)
	defer stop()
	defer func() {
		if p := recover(); p != nil {
			a.logger.Error("milter: panic in bridge session", "event", ev.String(),
				"panic", p, "stack", string(debug.Stack()))
			r = bridge.Reply{Kind: bridge.TempFail}
		}
	}()
	return fn(a.ctx, macros{m})
}

// keepAlive sends progress every ProgressInterval until the returned stop
// function is called; stop waits for a packet being sent, so no packet
// follows the reply. It uses a timer, not a goroutine: most events are
// answered long before the first interval, and a goroutine started and
// stopped for each of them cost two scheduler wake-ups per event.
func (a *adapter) keepAlive(progress func() error) (stop func()) {
	every := a.srv.opts.ProgressInterval
	if progress == nil || every <= 0 || a.version < 6 {
		return func() {}
	}
	var mu sync.Mutex // held while a packet is sent
	stopped := false
	var t *time.Timer
	mu.Lock() // t is set before the first tick reads it
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if err := progress(); err != nil {
			a.logger.Debug("milter: keep-alive stopped", "err", err)
			return
		}
		t.Reset(every)
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

// response maps a bridge reply to a milter response for event ev.
func (a *adapter) response(ev event, r bridge.Reply) *gomilter.Response {
	switch r.Kind {
	case bridge.Continue:
		if ev == evEOM {
			return gomilter.RespAccept
		}
		return gomilter.RespContinue
	case bridge.Skip:
		if ev.skippable() && a.protocol&gomilter.OptSkip != 0 {
			return gomilter.RespSkip
		}
		return a.response(ev, bridge.Reply{Kind: bridge.Continue})
	case bridge.Accept, bridge.Discard:
		if ev != evEOM {
			a.logger.Error("milter: bridge answered accept/discard before end of message; continuing",
				"event", ev.String(), "kind", int(r.Kind))
			return gomilter.RespContinue
		}
		if r.Kind == bridge.Discard {
			return gomilter.RespDiscard
		}
		return gomilter.RespAccept
	case bridge.Reject, bridge.TempFail:
		class, plain := 5, gomilter.RespReject
		if r.Kind == bridge.TempFail {
			class, plain = 4, gomilter.RespTempFail
		}
		resp, err := customResponse(r, class)
		if err != nil {
			a.logger.Error("milter: invalid reply from the bridge; using the MTA's default text",
				"event", ev.String(), "reply", r.SMTP.String(), "err", err)
		}
		if resp == nil {
			return plain
		}
		return resp
	}
	a.logger.Error("milter: unknown reply kind; answering tempfail", "event", ev.String(), "kind", int(r.Kind))
	return gomilter.RespTempFail
}
