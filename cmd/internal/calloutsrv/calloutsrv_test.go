package calloutsrv

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const contrib = "../../../contrib/opes-milter.toml"

// TestLoadNeedsCallout: a file without a [callout] table is refused,
// naming the file.
func TestLoadNeedsCallout(t *testing.T) {
	data, err := os.ReadFile(contrib)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	path := filepath.Join(t.TempDir(), "milter-only.toml")
	if err := os.WriteFile(path, []byte(text[:strings.Index(text, "\n[callout]")]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Load(path); err == nil || !strings.Contains(err.Error(), path+": no [callout] table") {
		t.Errorf("Load without [callout]: %v", err)
	}
}

// TestNewAndReload: the server of contrib's [callout] table, with and
// without a registry; Reload gives it the file's services again, and an
// invalid file keeps them, saying why.
func TestNewAndReload(t *testing.T) {
	cfg, services, tc, err := Load(contrib)
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		t.Error("contrib has no TLS, Load returned a TLS configuration")
	}
	for _, reg := range []*prometheus.Registry{prometheus.NewRegistry(), nil} {
		var logs bytes.Buffer
		var d *Daemon
		if reg == nil {
			d = New(cfg.Callout, services, nil, slog.New(slog.NewTextHandler(&logs, nil)), nil)
			if d.Metrics != nil || d.Server.Observer != nil || d.Health.Observer != nil {
				t.Error("metrics without a registry")
			}
		} else {
			d = New(cfg.Callout, services, nil, slog.New(slog.NewTextHandler(&logs, nil)), reg)
			if d.Metrics == nil || d.Server.Observer == nil {
				t.Fatal("no metrics with a registry")
			}
			mfs, err := reg.Gather()
			if err != nil || len(mfs) == 0 {
				t.Errorf("registry: %d families, %v", len(mfs), err)
			}
		}
		if len(d.Server.Services) != len(cfg.Callout.Services) {
			t.Errorf("%d services, want %d", len(d.Server.Services), len(cfg.Callout.Services))
		}
		d.Reload(contrib)
		if !strings.Contains(logs.String(), "services reloaded") {
			t.Errorf("Reload: %s", logs.String())
		}
		d.Reload(filepath.Join(t.TempDir(), "missing.toml"))
		if !strings.Contains(logs.String(), "reload failed; keeping the running services") {
			t.Errorf("Reload of a missing file: %s", logs.String())
		}
	}
}
