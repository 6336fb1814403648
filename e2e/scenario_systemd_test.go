package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The shipped units and what they name that a test replaces.
const (
	contribSystemd = "contrib/systemd"
	unitBinDir     = "@BINDIR@/" // the units are templates (make install fills it in)
	unitConfig     = "/etc/opes-milter/opes-milter.toml"
	// maxExposure is the highest "systemd-analyze security" exposure level
	// (0 = locked down, 10 = unprotected) a shipped unit may have.
	maxExposure = 2.0
)

// unitFile is a systemd unit: the values of its [Service] section by key,
// in order.
type unitFile map[string][]string

// parseUnit reads the [Service] section of a unit file.
func parseUnit(text string) unitFile {
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		case section == "Service":
			if k, v, ok := strings.Cut(line, "="); ok {
				u[k] = append(u[k], v)
			}
		}
	}
	return u
}

// last returns the value a key ends up with ("" when absent).
func (u unitFile) last(key string) string {
	v := u[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// TestScenarioSystemdUnits checks the shipped units of contrib/systemd:
// systemd-analyze verifies them and rates their exposure at most
// maxExposure; they run as a dedicated user without privileges, in a
// read-only system, with a runtime directory for the socket. Then it runs
// what they run, with the binaries and configuration of this tree: each
// ExecStartPre, each ExecStart as an unprivileged user (setpriv, as User=
// and NoNewPrivileges= do) with opes-milter on a unix socket in the runtime
// directory, a miltertest smoke test through that socket, ExecReload for
// opes-milter, and a stop with KillSignal within TimeoutStopSec.
func TestScenarioSystemdUnits(t *testing.T) {
	analyze := RequirePeer(t, "systemd-analyze")
	setpriv := RequirePeer(t, "setpriv")
	milterBin, calloutBin := BuildBinaries(t)
	dir := InstanceDir(t, "systemd")
	binDir := filepath.Join(dir, "bin")
	runDir := filepath.Join(dir, "run", "opes-milter") // RuntimeDirectory=opes-milter
	mkdirs(t, 0o755, binDir, filepath.Dir(runDir))
	mkdirs(t, 0o750, runDir)
	chown(t, runDir, 65534, 65534)
	for _, b := range []string{milterBin, calloutBin} {
		copyExecutable(t, b, filepath.Join(binDir, filepath.Base(b)))
	}
	sock := filepath.Join(runDir, "milter.sock")
	calloutAddr := FreeAddr(t)
	cfg := readRepoFile(t, "contrib/opes-milter.toml")
	cfg = applyEdits(t, cfg, []configEdit{
		{`listen = ["inet:127.0.0.1:8890"]`, `listen = ["unix:` + sock + `"]`},
		calloutAt(calloutAddr),
		{`listen = ["127.0.0.1:8891"]`, `listen = ["` + calloutAddr + `"]`},
	})
	config := filepath.Join(dir, "opes-milter.toml")
	writeFile(t, config, cfg, 0o644)

	units := map[string]unitFile{}
	for _, name := range []string{"opes-callout.service", "opes-milter.service"} {
		text := readRepoFile(t, filepath.Join(contribSystemd, name))
		text = strings.ReplaceAll(strings.ReplaceAll(text, unitBinDir, binDir+"/"), unitConfig, config)
		path := filepath.Join(dir, name)
		writeFile(t, path, text, 0o644)
		units[name] = parseUnit(text)
		t.Run(name+"/analyze", func(t *testing.T) {
			if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
			out, _ := exec.Command(analyze, "security", "--offline=true", path).CombinedOutput()
			m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("systemd-analyze security: no exposure level:\n%s", out)
			}
			level, _ := strconv.ParseFloat(string(m[1]), 64)
			t.Logf("%s: exposure %.1f", name, level)
			if level > maxExposure {
				t.Errorf("exposure %.1f, want at most %.1f:\n%s", level, maxExposure, out)
			}
			checkHardening(t, units[name])
		})
	}

	// Start them as the unit would: ExecStartPre, then ExecStart as nobody.
	start := func(name string, ready func() bool) *Process {
		t.Helper()
		u := units[name]
		asUser := []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs"}
		for _, pre := range u["ExecStartPre"] {
			if out, err := exec.Command(asUser[0], append(asUser[1:], strings.Fields(pre)...)...).CombinedOutput(); err != nil {
				t.Fatalf("%s ExecStartPre %s: %v\n%s", name, pre, err, out)
			}
		}
		return Command{Name: name, Argv: append(asUser, strings.Fields(u.last("ExecStart"))...), Dir: dir, Ready: ready}.Start(t)
	}
	callout := start("opes-callout.service", func() bool { return Listening(calloutAddr) })
	milter := start("opes-milter.service", func() bool { _, err := os.Stat(sock); return err == nil })

	if out, err := Miltertest(t, "make-run-smoke.lua", map[string]string{"MILTER": "unix:" + sock}); err != nil {
		t.Errorf("miltertest through the unit's socket: %v\n%s", err, out)
	}
	reload := strings.ReplaceAll(units["opes-milter.service"].last("ExecReload"), "$MAINPID", strconv.Itoa(milter.Pid()))
	if out, err := exec.Command("sh", "-c", reload).CombinedOutput(); err != nil {
		t.Errorf("ExecReload %s: %v\n%s", reload, err, out)
	}
	if !Eventually(10*time.Second, func() bool { return strings.Contains(milter.Output(), "configuration reloaded") }) {
		t.Errorf("opes-milter did not reload on ExecReload:\n%s", milter.Output())
	}
	for name, p := range map[string]*Process{"opes-milter.service": milter, "opes-callout.service": callout} {
		u := units[name]
		if sig := u.last("KillSignal"); sig != "SIGTERM" {
			t.Errorf("%s: KillSignal=%s; the daemons stop gracefully on SIGTERM", name, sig)
		}
		limit, err := time.ParseDuration(u.last("TimeoutStopSec"))
		if err != nil {
			t.Errorf("%s: TimeoutStopSec=%q: %v", name, u.last("TimeoutStopSec"), err)
		}
		began := time.Now()
		_ = syscall.Kill(p.Pid(), syscall.SIGTERM)
		select {
		case <-p.Done():
		case <-time.After(limit):
			t.Errorf("%s did not stop within TimeoutStopSec=%v", name, limit)
		}
		if err := p.Stop(); err != nil {
			t.Errorf("%s stopped with %v after %v:\n%s", name, err, time.Since(began), p.Output())
		}
	}
}

// checkHardening checks the settings the issue asks of a shipped unit.
func checkHardening(t *testing.T, u unitFile) {
	t.Helper()
	if user := u.last("User"); user == "" || user == "root" || user == "nobody" {
		t.Errorf("User=%q: want a dedicated user", user)
	}
	for key, want := range map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
	} {
		if got, ok := u[key]; !ok || u.last(key) != want {
			t.Errorf("%s=%q (set %v), want %q", key, u.last(key), ok && len(got) > 0, want)
		}
	}
	if u.last("RuntimeDirectory") == "" {
		t.Error("no RuntimeDirectory= for the socket")
	}
}

// copyExecutable copies a binary to a place an unprivileged user can run
// it from.
func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
