// Package calloutsrv sets up the callout server of a configuration's
// [callout] table: its services, their metrics, reloading them and
// watching their scanners. opes-callout run, opes-milter run -local and
// opes-milter try -local all build it here, so that the three run the same
// server.
package calloutsrv

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/callout/promobserver"
	"github.com/opes-milter/opes-milter/mapping"
)

// extensions are the SMTP extensions the server's services can handle
// (the profile's AM-OPT negotiation).
var extensions = []string{"SIZE", "8BITMIME", "SMTPUTF8", "DSN"}

// Load is the one validation path of opes-callout's run and check: the
// file must be valid, have a [callout] table whose services build, and its
// TLS files (if any) must load.
func Load(path string) (*mapping.Config, map[string]callout.Service, *tls.Config, error) {
	cfg, err := load(path)
	if err != nil {
		return nil, nil, nil, err
	}
	services, err := builtin.NewServices(cfg.Callout)
	if err != nil {
		return nil, nil, nil, err
	}
	var tc *tls.Config
	if cfg.Callout.TLS != nil {
		if tc, err = cfg.Callout.TLS.ServerConfig(); err != nil {
			return nil, nil, nil, err
		}
	}
	return cfg, services, tc, nil
}

// load reads the configuration and requires its [callout] table.
func load(path string) (*mapping.Config, error) {
	cfg, err := mapping.LoadFile(path)
	if err != nil {
		return nil, err
	}
	if cfg.Callout == nil {
		return nil, errors.New(path + ": no [callout] table")
	}
	return cfg, nil
}

// Daemon is a callout server with its metrics and the health watcher of
// its scanners.
type Daemon struct {
	Server  *callout.Server
	Metrics *promobserver.Metrics // nil without a registry
	Health  *callout.HealthWatcher
	log     *slog.Logger
}

// New builds the server of c with services (from Load or
// builtin.NewServices), tlsConfig (nil for plain TCP) and log; with reg
// its metrics are registered there.
func New(c *mapping.Callout, services map[string]callout.Service, tlsConfig *tls.Config, log *slog.Logger, reg prometheus.Registerer) *Daemon {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{log: log}
	if reg != nil {
		d.Metrics = promobserver.New(reg)
		d.Metrics.SetServices(services, serviceNames(c))
	}
	d.Server = &callout.Server{
		Services:       services,
		Logger:         log,
		MaxConnections: c.MaxConnections,
		IdleTimeout:    c.IdleTimeout,
		Extensions:     extensions,
		TLSConfig:      tlsConfig,
	}
	if d.Metrics != nil {
		d.Server.Observer = d.Metrics
	}
	d.Server.SetServiceNames(serviceNames(c))
	d.Health = &callout.HealthWatcher{Server: d.Server}
	if d.Metrics != nil {
		d.Health.Observer = d.Metrics
	}
	return d
}

// Watch checks the scanners of the services in the background
// (opes_callout_backend_up) until ctx ends.
func (d *Daemon) Watch(ctx context.Context) { go d.Health.Run(ctx) }

// Reload loads the configuration at path again and gives its services to
// new service groups; listeners, TLS and limits need a restart. An invalid
// file keeps the running services.
func (d *Daemon) Reload(path string) {
	cfg, err := load(path)
	if err == nil {
		var services map[string]callout.Service
		if services, err = builtin.NewServices(cfg.Callout); err == nil {
			d.Use(path, cfg.Callout, services)
			return
		}
	}
	d.log.Error("reload failed; keeping the running services", "err", err)
}

// Use gives services, built from c (read from path), to new service
// groups, with their metrics' names.
func (d *Daemon) Use(path string, c *mapping.Callout, services map[string]callout.Service) {
	names := serviceNames(c)
	d.Metrics.SetServices(services, names)
	d.Server.SetServiceNames(names)
	d.Server.SetServices(services)
	d.log.Info("services reloaded (listeners, TLS and limits change on restart)", "config", path, "services", len(services))
}

// serviceNames maps each service URI to its configured name, the service
// label of the metrics.
func serviceNames(c *mapping.Callout) map[string]string {
	names := make(map[string]string, len(c.Services))
	for _, s := range c.Services {
		names[s.URI] = s.Name
	}
	return names
}
