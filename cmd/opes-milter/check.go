package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// probeTimeout bounds check -probe as a whole.
const probeTimeout = 60 * time.Second

// cmdCheck validates a configuration file as run does, compares it with
// its [callout] side, and prints the compiled routes. With probe it then
// negotiates every chain's service group with every callout server and
// prints what each accepted or refused; a failed negotiation fails the
// check.
func cmdCheck(ctx context.Context, path string, probe bool, stdout io.Writer) error {
	cfg, policy, err := loadMilter(path)
	if err != nil {
		return err
	}
	// With -probe the servers are asked even when the two sides of the
	// file disagree: what the running server says settles it.
	_, compareErr := compareCallout(cfg)
	if compareErr != nil && !probe {
		return compareErr
	}
	if err := cfg.Format(stdout); err != nil || !probe {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	results := bridge.Probe(ctx, policy)
	fmt.Fprintf(stdout, "\nprobe (every chain's service group with every server of its set)\n")
	failed := 0
	for _, r := range results {
		fmt.Fprintf(stdout, "  server set %q, server %s, chain %q: ", r.ServerSet, r.Server, r.Chain)
		if r.Err != nil {
			failed++
			fmt.Fprintf(stdout, "FAILED: %v\n", r.Err)
			continue
		}
		fmt.Fprintf(stdout, "accepted: %s\n", describeAnswer(r.Answer))
	}
	if failed > 0 {
		err := fmt.Errorf("probe: %d of %d negotiations failed", failed, len(results))
		return errors.Join(compareErr, err)
	}
	return compareErr
}

// describeAnswer is "adaptive A B, informative C" for a profile answer.
func describeAnswer(p ocpsmtp.Profile) string {
	join := func(parts []ocpsmtp.Part) string {
		if len(parts) == 0 {
			return "none"
		}
		s := make([]string, len(parts))
		for i, p := range parts {
			s[i] = string(p)
		}
		return strings.Join(s, " ")
	}
	return fmt.Sprintf("%s, adaptive %s, informative %s", p.URI, join(p.Adaptive), join(p.Informative))
}
