package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// StartSpamdRules starts spamd like StartSpamd, with local tests only (-L),
// and with a site configuration of the test's own: the plugin files of
// /etc/spamassassin plus localCF (rules the test adds). It is ready when it
// answers PING with PONG.
func StartSpamdRules(t testing.TB, localCF string) *Spamd {
	t.Helper()
	RequireRoot(t)
	bin := RequirePeer(t, "spamd")
	dir := InstanceDir(t, "spamd")
	site := filepath.Join(dir, "site")
	mkdirs(t, 0o755, site)
	pres, _ := filepath.Glob("/etc/spamassassin/*.pre")
	for _, p := range pres {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(site, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(site, "local.cf"), []byte(localCF), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Spamd{Port: FreePort(t)}
	s.Addr = "127.0.0.1:" + strconv.Itoa(s.Port)
	s.proc = Command{
		Name: "spamd",
		Argv: []string{bin,
			"--local", "--nouser-config", "--username=nobody", "--siteconfigpath=" + site,
			"--listen=" + s.Addr, "--allowed-ips=127.0.0.1",
			"--min-children=2", "--max-children=4",
			"--syslog=stderr", "--pidfile=" + filepath.Join(dir, "spamd.pid"),
		},
		Dir:          dir,
		Ready:        func() bool { return peerprobe.Spamd(s.Addr) },
		ReadyTimeout: 90 * time.Second,
	}.Start(t)
	return s
}
