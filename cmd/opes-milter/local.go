package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/cmd/internal/calloutsrv"
	"github.com/opes-milter/opes-milter/mapping"
)

// startLocal builds the [callout] services of cfg (which must have the
// table, and whose chains and routes must match it) and serves them on a
// loopback port in process, with log and, when reg is set, their metrics
// there. It returns the server and its address.
func startLocal(cfg *mapping.Config, log *slog.Logger, reg prometheus.Registerer) (*calloutsrv.Daemon, string, error) {
	services, err := localServices(cfg)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	d := calloutsrv.New(cfg.Callout, services, nil, log, reg)
	go d.Server.Serve(ln)
	return d, ln.Addr().String(), nil
}

// localServices builds the [callout] services of cfg for -local: the
// table must be there and match the chains and routes.
func localServices(cfg *mapping.Config) (map[string]callout.Service, error) {
	if cfg.Callout == nil {
		return nil, fmt.Errorf("%s: -local needs a [callout] table in the same file", cfg.File)
	}
	return compareCallout(cfg)
}

// pointAt points every server set of policy at the callout server at addr
// (in process, plain TCP on loopback).
func pointAt(policy *bridge.Policy, addr string) {
	for _, r := range policy.Routes {
		set := r.Chain.Server // this file's own, loaded for this process alone
		set.Addresses = []string{addr}
		set.TLS = nil
	}
}

// localCallout is the callout server of opes-milter run -local: the
// [callout] services of the same file, served in process on a loopback
// port that every server set points at. OCP still carries every
// transaction, over a connection inside the process; what it saves is the
// second daemon (its scheduler, its system calls). [callout] listen,
// metrics_listen and TLS are not used: the in-process server is reached
// by this milter alone, and its metrics are served with opes-milter's.
type localCallout struct {
	d     *calloutsrv.Daemon
	addr  string
	cfg   *mapping.Callout
	watch context.CancelFunc
}

// startLocalCallout starts the in-process callout server of cfg, with its
// own logger (the [callout] log settings, to w) and its metrics in reg,
// and points policy at it.
func startLocalCallout(ctx context.Context, cfg *mapping.Config, policy *bridge.Policy, w io.Writer, reg prometheus.Registerer) (*localCallout, error) {
	var log *slog.Logger
	if cfg.Callout != nil {
		log = newLogger(w, cfg.Callout.LogFormat, cfg.Callout.LogLevel)
	}
	d, addr, err := startLocal(cfg, log, reg)
	if err != nil {
		return nil, err
	}
	pointAt(policy, addr)
	wctx, cancel := context.WithCancel(ctx)
	d.Watch(wctx)
	return &localCallout{d: d, addr: addr, cfg: cfg.Callout, watch: cancel}, nil
}

// reload checks a reloaded file for -local (a [callout] table matching
// its chains), gives its services to the server and points p at it.
func (lc *localCallout) reload(cfg *mapping.Config, p *bridge.Policy) error {
	services, err := localServices(cfg)
	if err != nil {
		return err
	}
	lc.d.Use(cfg.File, cfg.Callout, services)
	pointAt(p, lc.addr)
	lc.cfg = cfg.Callout
	return nil
}

// stop drains the server as opes-callout does (bounded by [callout]
// drain_timeout) and stops watching its scanners.
func (lc *localCallout) stop(log *slog.Logger) {
	lc.watch()
	ctx, cancel := context.WithTimeout(context.Background(), lc.cfg.DrainTimeout)
	defer cancel()
	if err := lc.d.Server.Shutdown(ctx); err != nil {
		log.Warn("in-process callout server: shutdown cut short", "err", err)
	}
}
