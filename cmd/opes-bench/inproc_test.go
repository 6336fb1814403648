package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/milter"
)

// repoFile reads a file of the repository.
func repoFile(tb testing.TB, rel string) string {
	tb.Helper()
	root, err := findRepo()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// startNoopServer serves the baseline filter in this process and returns
// its address.
func startNoopServer(tb testing.TB) string {
	tb.Helper()
	ln := listen(tb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveNoop(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	return ln.Addr().String()
}

// startStack wires opes-callout and opes-milter in this process as their
// commands do, from ContribConfig with the variant's edits, and returns
// the milter address.
func startStack(tb testing.TB, v opesVariant) string {
	tb.Helper()
	mln, cln := listen(tb), listen(tb)
	text, err := opesConfig(repoFile(tb, ContribConfig), mln.Addr().String(), cln.Addr().String(), tb.TempDir(), v)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := mapping.Load("bench.toml", []byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	services, err := builtin.NewServices(cfg.Callout)
	if err != nil {
		tb.Fatal(err)
	}
	csrv := &callout.Server{Services: services, Logger: log, MaxConnections: cfg.Callout.MaxConnections,
		IdleTimeout: cfg.Callout.IdleTimeout, Extensions: []string{"SIZE", "8BITMIME", "SMTPUTF8", "DSN"}}
	go func() { _ = csrv.Serve(cln) }()
	policy, err := bridge.PolicyFromConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	br := bridge.New(policy, log)
	msrv := milter.NewServer(br, milter.Options{Logger: log})
	go func() { _ = msrv.Serve(mln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = msrv.Shutdown(ctx)
		_ = br.Close()
		_ = csrv.Shutdown(ctx)
	})
	return mln.Addr().String()
}
