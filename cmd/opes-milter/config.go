package main

import (
	"fmt"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/mapping"
)

// loadMilter is the one validation path of run, check, try and SIGHUP:
// the file must be valid, configure opes-milter (routes) and compile
// into a Policy (TLS files readable).
func loadMilter(path string) (*mapping.Config, *bridge.Policy, error) {
	cfg, err := mapping.LoadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.HasMilter() {
		return nil, nil, fmt.Errorf("%s: no routes: nothing for opes-milter to do", path)
	}
	policy, err := bridge.PolicyFromConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, policy, nil
}

// compareCallout builds the [callout] services of cfg, when it has them,
// as opes-callout would, compares them with the chains and routes (see
// mapping.Config.CompareCallout) and returns them (nil without the table).
func compareCallout(cfg *mapping.Config) (map[string]callout.Service, error) {
	if cfg.Callout == nil {
		return nil, nil
	}
	services, err := builtin.NewServices(cfg.Callout)
	if err != nil {
		return nil, fmt.Errorf("%s: [callout]: %w", cfg.File, err)
	}
	err = cfg.CompareCallout(func(cs *mapping.CalloutService) mapping.Needs {
		n := services[cs.URI].Needs()
		return mapping.Needs{Adapt: n.Adapt, Read: n.Read}
	})
	if err != nil {
		return nil, err
	}
	return services, nil
}
