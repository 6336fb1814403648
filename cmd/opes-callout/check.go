package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/mapping"
)

// cmdCheck validates a configuration file, builds its services and lists
// them.
func cmdCheck(path string, stdout io.Writer) error {
	cfg, _, _, err := loadCallout(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	for _, s := range cfg.Callout.Services {
		fmt.Fprintf(stdout, "  %-18s %-20s %s\n", s.Name, s.Kind, s.URI)
		if d := mapping.DescribeOptions(s.Options); d != "" {
			fmt.Fprintf(stdout, "  %-18s %s\n", "", d)
		}
	}
	return nil
}

// loadCallout is the one validation path of run and check: the file must
// be valid, have a [callout] table whose services build, and its TLS
// files (if any) must load.
func loadCallout(path string) (*mapping.Config, map[string]callout.Service, *tls.Config, error) {
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
