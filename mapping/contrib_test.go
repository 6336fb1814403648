package mapping

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const contribFile = "../contrib/opes-milter.toml"

// TestContribConfig loads the shipped configuration, the one `make run`
// uses, and checks the setup it promises.
func TestContribConfig(t *testing.T) {
	c, err := LoadFile(contribFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Milter.Listen; len(got) != 1 || got[0].String() != "inet:127.0.0.1:8890" {
		t.Errorf("milter listens on %v", got)
	}
	if c.Milter.SpoolDir != "" {
		t.Errorf("spool_dir = %q, want the temporary directory", c.Milter.SpoolDir)
	}
	local, ok := c.Server("local")
	if !ok || len(local.Addresses) != 1 || local.Addresses[0] != "127.0.0.1:8891" {
		t.Errorf("server set local = %+v", local)
	}
	if c.Callout == nil || len(c.Callout.Listen) != 1 || c.Callout.Listen[0] != "127.0.0.1:8891" {
		t.Fatalf("callout = %+v", c.Callout)
	}
	if len(c.Routes) != 1 {
		t.Fatalf("%d routes", len(c.Routes))
	}
	r := c.Routes[0]
	if r.Profile != Receiver || joinParts(r.Adaptive) != "RCPT RAWDATA" || joinParts(r.Informative) != "IP HELO MAIL" {
		t.Errorf("route: %s adaptive %v informative %v", r.Profile, r.Adaptive, r.Informative)
	}
	// Every service of the chain is offered by opes-callout.
	for _, s := range r.Chain.Services {
		if _, ok := c.Callout.Service(s.URI); !ok {
			t.Errorf("service %s <%s> is not offered by opes-callout", s.Name, s.URI)
		}
	}
	rp, _ := c.Callout.Service("http://opes-milter.example/services/recipient-policy")
	if p, ok := rp.Options.(*RecipientPolicy); !ok || len(p.Deny) != 1 || p.Deny[0] != "blocked@example.com" || p.Reply.Code != 550 {
		t.Errorf("recipient-policy options %+v", rp.Options)
	}
	ht, _ := c.Callout.Service("http://opes-milter.example/services/header-tag")
	if h, ok := ht.Options.(*HeaderTag); !ok || len(h.Headers) != 1 || h.Headers[0].Name != "X-OPES-Tag" {
		t.Errorf("header-tag options %+v", ht.Options)
	}
	af, _ := c.Callout.Service("http://opes-milter.example/services/attachment-filter")
	if a, ok := af.Options.(*AttachmentFilter); !ok || len(a.Extensions) != 1 || a.Extensions[0] != ".exe" || a.Action != "remove" {
		t.Errorf("attachment-filter options %+v", af.Options)
	}
	dc, _ := c.Callout.Service("http://opes-milter.example/services/disclaimer")
	if d, ok := dc.Options.(*Disclaimer); !ok || d.Text == "" {
		t.Errorf("disclaimer options %+v", dc.Options)
	}
}

// TestContribMisspeltKey is the acceptance test of `opes-milter check`: a
// copy of the shipped file with one misspelt key fails, naming the key
// and its line.
func TestContribMisspeltKey(t *testing.T) {
	data, err := os.ReadFile(contribFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	tests := []struct{ from, to, key string }{
		{"adaptive = ", "adaptiv = ", "routes[0].adaptiv"},
		{"max_sessions = ", "max_session = ", "milter.max_session"},
		{"progress_interval = ", "progres_interval = ", "milter.timeouts.progres_interval"},
		{"failure_limit = ", "failure_limt = ", "servers.local.failure_limt"},
		{"deny = ", "denny = ", "callout.services.recipient-policy.denny"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, tc.from) })
			if i < 0 {
				t.Fatalf("no line starts with %q", tc.from)
			}
			bad := slices.Clone(lines)
			bad[i] = strings.Replace(bad[i], tc.from, tc.to, 1)
			path := filepath.Join(t.TempDir(), "bad.toml")
			if err := os.WriteFile(path, []byte(strings.Join(bad, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := Check(&out, path)
			if err == nil {
				t.Fatal("Check accepted the misspelt key")
			}
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("error is not ErrUnknownKey: %v", err)
			}
			want := path + ":" + strconv.Itoa(i+1) + ": " + tc.key + ": unknown key"
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to start with:\n%s", err, want)
			}
			if out.Len() != 0 {
				t.Errorf("Check printed on failure: %s", out.String())
			}
		})
	}
}
