package main

import (
	"context"
	"flag"
	"io"
	"net"
)

// cmdNoop serves the baseline filter of case (a) until SIGINT or SIGTERM.
func cmdNoop(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:8892", "`host:port` to listen on")
	if err := parse(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	return serveNoop(ctx, ln)
}
