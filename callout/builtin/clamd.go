package builtin

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Clamd scans each message with ClamAV's clamd (kind clamd): the whole
// message, passed as a file descriptor (zFILDES) or streamed with
// zINSTREAM in chunks over a unix or TCP socket (transfer, below), within
// a per-scan deadline.
//
// The whole message, not each MIME part: clamd parses MIME itself (ScanMail
// yes, its default), decodes the transfer encodings, opens archives and
// applies its limits (MaxScanSize, MaxFiles, MaxRecursion) to the message
// as a whole; it also runs mail-level heuristics (phishing) that need the
// message. Sending parts one by one would cost a round trip per part,
// reset those limits per part and lose the heuristics.
//
// One connection per scan, not zIDSESSION: in a session clamd answers in
// order on one connection and closes it after its IdleTimeout, so a
// session held for reuse may be closed under a scan (a retry would be
// needed) and one reply lost or misread would shift every later verdict
// to the wrong message. A fresh connection per scan costs one connect on
// a local socket, small beside the scan, and a broken reply can only ever
// fail its own message. The connections are bounded by max_connections
// (callout.Backend).
//
// transfer = "fildes" (unix sockets only) passes the message as a file
// descriptor instead (zFILDES, as clamav-milter does over a local socket):
// clamd then scans it in place instead of receiving the stream into a
// temporary file of its own, which costs clamd less CPU per message, and
// StreamMaxLength no longer bounds it (MaxFileSize and MaxScanSize still
// do). transfer = "auto", the default, passes messages up to
// mapping.ClamdAutoFildesMax that way over a unix socket and streams the
// rest (and everything over TCP), so that StreamMaxLength still bounds
// large messages and the descriptor's in-memory copy stays small; a clamd
// that cannot take a descriptor is found out on the first message and
// streamed to from then on (see scan).
//
// No silent pass at clamd's limits: with AlertExceedsMax yes clamd reports
// what it could not scan whole as Heuristics.Limits.Exceeded.*, and a
// message over StreamMaxLength gets "INSTREAM size limit exceeded", named
// ClamdStreamLimit here; both are findings with the on_oversize outcome.
// clamd down, too slow or answering an error is the service's failure (a
// *callout.BackendError), which the processor's failure policy turns into
// its outcome (tempfail by default): never a pass.
type Clamd struct {
	c      clamdClient
	policy scanPolicy
	// fildesFallback (transfer = "auto") streams a message whose zFILDES
	// got an error reply; noFildes is set once streaming worked where
	// zFILDES did not.
	fildesFallback bool
	noFildes       atomic.Bool

	mu     sync.Mutex
	engine string // clamd's version, once known
}

// NewClamd returns the service for opts.
func NewClamd(name string, opts *mapping.Clamd) (*Clamd, error) {
	b, err := callout.NewBackend(callout.BackendOptions{
		Name: name, Address: opts.Address, Timeout: opts.Timeout, MaxConns: opts.MaxConnections,
	})
	if err != nil {
		return nil, err
	}
	sp, err := newScanPolicy(opts.ScanPolicy)
	if err != nil {
		return nil, err
	}
	chunk := opts.Chunk
	if chunk <= 0 {
		chunk = mapping.DefaultClamdChunk
	}
	network, _, err := callout.ParseBackendAddress(opts.Address)
	if err != nil {
		return nil, err
	}
	fildesMax := int64(-1) // messages up to this size go by zFILDES
	switch {
	case network != "unix":
	case opts.Transfer == mapping.ClamdFildes:
		fildesMax = math.MaxInt64
	case opts.Transfer == mapping.ClamdAuto:
		fildesMax = mapping.ClamdAutoFildesMax
	}
	return &Clamd{c: clamdClient{b: b, chunk: chunk, fildesMax: fildesMax}, policy: sp, engine: "ClamAV",
		fildesFallback: opts.Transfer == mapping.ClamdAuto}, nil
}

// Needs implements Service: RAWDATA is adapted (the verdict header, a
// refusal); the rest is not needed.
func (c *Clamd) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}

// AdaptMessage implements MessageAdapter.
func (c *Clamd) AdaptMessage(ctx context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	v, err := c.scan(ctx, tx, msg)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			return callout.Decision{}, ctx.Err()
		}
		return callout.Decision{}, err
	}
	engine := c.engineName()
	if v.Clean() {
		return c.policy.clean(engine), nil
	}
	return c.policy.found(tx, engine, finding(v)), nil
}

// scan sends msg to clamd the way the transfer setting says. With "auto",
// a clamd that answers zFILDES with an error and then gives a verdict for
// the same message streamed cannot take descriptors (it is on another
// host behind a forwarded socket, or a mandatory access control policy,
// like AppArmor's profile for clamd, refuses the passed file): the message
// gets that verdict and the service streams from then on, saying so once.
// Nothing passes without a verdict: when the stream fails too, that is
// the service's failure.
func (c *Clamd) scan(ctx context.Context, tx *callout.Tx, msg *callout.Message) (clamdVerdict, error) {
	if msg.Size() > c.c.fildesMax || c.noFildes.Load() {
		return c.c.scan(ctx, msg.NewReader())
	}
	v, err := c.c.scanFD(ctx, msg.NewReader())
	if err == nil || !c.fildesFallback || !errors.Is(err, errClamdReply) || ctx.Err() != nil {
		return v, err
	}
	v, serr := c.c.scan(ctx, msg.NewReader())
	if serr != nil {
		return v, serr
	}
	if !c.noFildes.Swap(true) {
		tx.Log().Warn("clamd answered zFILDES with an error but scanned the same message streamed: "+
			"streaming every message from now on (set transfer = \"instream\" to say so)",
			"service", tx.Service, "error", err)
	}
	return v, nil
}

func (c *Clamd) engineName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.engine
}

// CheckHealth implements callout.HealthReporter: zPING, and zVERSION to
// learn the engine named in the verdict header.
func (c *Clamd) CheckHealth(ctx context.Context) []callout.BackendHealth {
	if err := c.c.ping(ctx); err == nil {
		if v, err := c.c.version(ctx); err == nil {
			c.mu.Lock()
			c.engine = sanitizeText(v) // it goes into a header field
			c.mu.Unlock()
		}
	}
	return []callout.BackendHealth{c.c.b.Health()}
}

// Close closes the backend's idle connections.
func (c *Clamd) Close() error { return c.c.b.Close() }
