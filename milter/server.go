package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Logger receives the adapter's logs; nil means slog.Default().
	Logger *slog.Logger
	// MaxPacket caps one incoming milter packet (command byte included);
	// 0 means DefaultMaxPacket, at most 1 GiB. A longer packet ends that
	// connection, so keep it above Postfix's header_size_limit.
	MaxPacket int
	// ReadTimeout bounds the wait for the MTA's next command; 0 means no
	// limit, which is right for Postfix: a milter connection idles as long
	// as its SMTP session, and cutting it makes Postfix apply
	// milter_default_action to the rest of that session.
	ReadTimeout time.Duration
	// WriteTimeout bounds each packet written to the MTA; 0 means 10s.
	WriteTimeout time.Duration
	// MaxConnections caps the MTA connections served at once; one beyond
	// it is closed as soon as it is accepted (the MTA then applies its
	// default action, Postfix milter_default_action, to that SMTP
	// session). 0 means no cap.
	MaxConnections int
	// IdleTimeout, when positive, bounds the wait for the MTA's next
	// command inside a mail transaction (from MAIL to end of message or
	// abort) and for the rest of a packet once its length arrived. A
	// connection idle longer is closed, which frees its session: Postfix
	// then applies milter_default_action to the rest of that SMTP session.
	// The bound is kept to within an eighth: a connection is closed after
	// between 7/8 of IdleTimeout and IdleTimeout without data.
	IdleTimeout time.Duration
	// ProgressInterval, when positive, sends SMFIR_PROGRESS at this
	// interval while the bridge works on an event: at end of message for
	// every MTA, and at every event for Postfix (Sendmail accepts PROGRESS
	// only at end of message). Keep it below Sendmail's R= timeout (10s by
	// default). 0 leaves keep-alives to the bridge (Modifier.Progress).
	ProgressInterval time.Duration
}

// forceGrace bounds how long Close and a timed-out Shutdown wait for
// bridge calls to return after their context was cancelled.
const forceGrace = 2 * time.Second

// refusalText is the reply to every event of a session the bridge refused.
const refusalText = "4.3.2 Service currently unavailable, try again later"

// Server serves milter connections for a bridge.Handler.
type Server struct {
	h       bridge.Handler
	opts    Options
	logger  *slog.Logger
	plan    plan
	gm      *gomilter.Server
	track   tracker
	ctx     context.Context // parent of every session context
	cancel  context.CancelFunc
	refusal *gomilter.Response
}

// NewServer returns a Server that negotiates what h.Requirements() asks
// for and creates one bridge.Session per MTA connection.
func NewServer(h bridge.Handler, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxPacket <= 0 {
		opts.MaxPacket = DefaultMaxPacket
	}
	opts.MaxPacket = min(opts.MaxPacket, maxMaxPacket)
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	refusal, err := gomilter.RejectWithCodeAndReason(451, refusalText)
	if err != nil {
		panic(fmt.Sprintf("milter: refusal reply: %v", err)) // constant input
	}
	s := &Server{h: h, opts: opts, logger: opts.Logger, plan: newPlan(h.Requirements()), refusal: refusal}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.track.init()
	gopts := append(s.plan.serverOptions(s.logger, h.Replies),
		gomilter.WithDynamicMilter(s.newAdapter),
		gomilter.WithReadTimeout(opts.ReadTimeout),
		gomilter.WithWriteTimeout(opts.WriteTimeout),
	)
	s.gm = gomilter.NewServer(gopts...)
	return s
}

// Serve accepts milter connections on ln until Shutdown or Close, then
// returns ErrServerClosed; other errors are returned as they are. Transient
// accept errors (too many open files ...) are retried. Serve may be called
// for several listeners.
func (s *Server) Serve(ln net.Listener) error {
	fl := newFrameListener(ln, uint32(s.opts.MaxPacket), s.logger, &s.track)
	fl.maxConns, fl.idle = s.opts.MaxConnections, s.opts.IdleTimeout
	if r := s.opts.ReadTimeout; r > 0 && (fl.idle <= 0 || r < fl.idle) {
		fl.idle = r
	}
	err := s.gm.Serve(fl)
	_ = fl.Close()
	if err == nil || errors.Is(err, gomilter.ErrServerClosed) || s.track.isClosed() {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting, lets in-flight milter connections run until
// the MTA ends them (QUIT, QUIT_NC or close) or ctx is done, then closes
// the rest and cancels their bridge calls. It returns ctx.Err() when it had
// to force.
func (s *Server) Shutdown(ctx context.Context) error {
	s.track.close()
	err := s.gm.Shutdown(ctx)
	if err == nil {
		err = s.track.wait(ctx)
	}
	if err == nil {
		s.cancel()
		return nil
	}
	s.force()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Close closes listeners and connections at once and cancels bridge
// calls; it waits up to a short grace for those calls to return.
func (s *Server) Close() error {
	s.track.close()
	err := s.gm.Close()
	s.force()
	return err
}

func (s *Server) force() {
	s.cancel()
	s.track.closeConns()
	ctx, cancel := context.WithTimeout(context.Background(), forceGrace)
	defer cancel()
	if s.track.wait(ctx) != nil {
		s.logger.Warn("milter: bridge calls still running after close", "grace", forceGrace)
	}
}

// SetLibraryLogger routes go-milter's own warnings (a package-level hook
// of that library) to l. Call it once at program start, before any Server
// runs.
func SetLibraryLogger(l *slog.Logger) {
	gomilter.LogWarning = func(format string, v ...any) {
		l.Warn("go-milter: " + fmt.Sprintf(format, v...))
	}
}
