package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/cmd/internal/calloutsrv"
	"github.com/opes-milter/opes-milter/mapping"
)

// startLocal builds the [callout] services of cfg (which must have the
// table, and whose chains and routes must match it) and serves them on a
// loopback port in process, with log and, when reg is set, their metrics
// there. It returns the server and its address.
func startLocal(cfg *mapping.Config, log *slog.Logger, reg prometheus.Registerer) (*calloutsrv.Daemon, string, error) {
	if cfg.Callout == nil {
		return nil, "", fmt.Errorf("%s: -local needs a [callout] table in the same file", cfg.File)
	}
	if err := compareCallout(cfg); err != nil {
		return nil, "", err
	}
	services, err := builtin.NewServices(cfg.Callout)
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

// pointAt points every server set of policy at the callout server at addr
// (in process, plain TCP on loopback).
func pointAt(policy *bridge.Policy, addr string) {
	for _, r := range policy.Routes {
		set := r.Chain.Server // this file's own, loaded for this process alone
		set.Addresses = []string{addr}
		set.TLS = nil
	}
}
