package main

import (
	"context"
	"errors"
	"net"

	gomilter "github.com/d--j/go-milter"
)

// noopMilter is the baseline filter of case (a): a stock go-milter server
// that negotiates every event with its reply (no SMFIP_NO*, no SMFIP_NR_*,
// no SKIP) and answers continue to each, accept at end of message, like a
// libmilter filter registering every callback. Its cost is the cost of
// the milter protocol itself.
type noopMilter struct{ gomilter.NoOpMilter }

// BodyChunk answers continue: NoOpMilter would answer skip if SKIP were
// negotiated, and the baseline must read the whole body.
func (noopMilter) BodyChunk([]byte, gomilter.Modifier) (*gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

// newNoopServer returns the baseline server.
func newNoopServer() *gomilter.Server {
	return gomilter.NewServer(
		gomilter.WithMilter(func() gomilter.Milter { return noopMilter{} }),
		gomilter.WithProtocols(0),
		gomilter.WithActions(0),
	)
}

// serveNoop serves the baseline filter on ln until ctx ends.
func serveNoop(ctx context.Context, ln net.Listener) error {
	srv := newNoopServer()
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	err := srv.Serve(ln)
	if ctx.Err() != nil || errors.Is(err, gomilter.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
