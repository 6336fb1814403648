package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/mapping"
)

// TestOpesConfig checks that every variant of the shipped configuration
// the bench uses is valid for both daemons.
func TestOpesConfig(t *testing.T) {
	contrib := repoFile(t, ContribConfig)
	tests := []struct {
		name     string
		v        opesVariant
		services int // of the chain
		contains []string
	}{
		{"make run chain", opesVariant{}, 4, []string{`listen = ["inet:127.0.0.1:1"]`, `addresses = ["127.0.0.1:2"]`}},
		{"pass-through", opesVariant{PassThrough: true}, 2, []string{chainPass, `kind = "size-limit"`}},
		{"many sessions", opesVariant{MaxSessions: 1000}, 4, []string{"max_sessions = 1000"}},
		{"large", opesVariant{PassThrough: true, MaxMessageSize: "1GiB"}, 2, []string{`max_message_size = "1GiB"`}},
		{"clamd scan only", opesVariant{Chain: chainClamd, Extra: strings.ReplaceAll(clamdServices, "@SOCKET@", "/tmp/clamd.sock"), Parts: partsScanOnly},
			1, []string{chainClamd, partsScanOnly[0], partsScanOnly[1], `kind = "clamd"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, err := opesConfig(contrib, "127.0.0.1:1", "127.0.0.1:2", "/tmp/spool", tt.v)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range append(tt.contains, `spool_dir = "/tmp/spool"`, `listen = ["127.0.0.1:2"]`) {
				if !strings.Contains(text, s) {
					t.Errorf("config lacks %q", s)
				}
			}
			cfg, err := mapping.Load("bench.toml", []byte(text))
			if err != nil {
				t.Fatalf("config does not load: %v", err)
			}
			if len(cfg.Routes) != 1 || len(cfg.Routes[0].Chain.Services) != tt.services {
				t.Errorf("routes %d", len(cfg.Routes))
			}
		})
	}
}

func TestOpesConfigDrift(t *testing.T) {
	_, err := opesConfig("[milter]\n", "127.0.0.1:1", "127.0.0.1:2", "", opesVariant{})
	if !errors.Is(err, ErrConfigDrift) {
		t.Errorf("err = %v; want ErrConfigDrift", err)
	}
}
