package callouttest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// Rspamd is an rspamd started offline for a test, in a scratch directory
// with a configuration of the test's own. Its DNS resolver is the test's
// loopback server: no lookup leaves the machine.
type Rspamd struct {
	// Addr is the normal worker (HTTP /checkv2), MilterAddr the proxy
	// worker speaking milter with self_scan ("" unless asked for).
	Addr, MilterAddr string
	Dir              string
	cmd              *exec.Cmd
	exited           chan struct{}
	log              *bytes.Buffer
}

// RspamdOptions configure StartRspamd.
type RspamdOptions struct {
	// DNS is the resolver address ("127.0.0.1:port"), required.
	DNS string
	// Lua is written to rspamd.local.lua (rules of the test's own).
	Lua string
	// LocalD maps file names of local.d to their contents (actions.conf,
	// milter_headers.conf, ...).
	LocalD map[string]string
	// Milter also starts the proxy worker as a milter (self_scan).
	Milter bool
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartRspamd starts rspamd and waits until /ping answers. It fails the
// test when rspamd is not installed (Debian package rspamd) or does not
// answer within 150 s (the first start compiles rspamd's hyperscan
// cache); it is stopped when the test ends.
func StartRspamd(t testing.TB, o RspamdOptions) *Rspamd {
	t.Helper()
	bin, err := exec.LookPath("rspamd")
	if err != nil {
		t.Fatal("rspamd is not installed (apt-get install rspamd)")
	}
	dir, err := os.MkdirTemp("", "rspamd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &Rspamd{Dir: dir, log: &bytes.Buffer{}, exited: make(chan struct{})}
	normal, controller, proxy := FreePort(t), FreePort(t), FreePort(t)
	r.Addr = "127.0.0.1:" + strconv.Itoa(normal)
	files := map[string]string{
		"worker-normal.inc":     "bind_socket = \"" + r.Addr + "\";\ncount = 1;\n",
		"worker-controller.inc": "bind_socket = \"127.0.0.1:" + strconv.Itoa(controller) + "\";\ncount = 1;\n",
		"worker-fuzzy.inc":      "count = 0;\n",
		"options.inc":           "dns { nameserver = [\"" + o.DNS + "\"]; timeout = 0.3s; retransmits = 1; }\n",
		"redis.conf":            "",
	}
	if o.Milter {
		r.MilterAddr = "127.0.0.1:" + strconv.Itoa(proxy)
		files["worker-proxy.inc"] = "bind_socket = \"" + r.MilterAddr + "\";\nmilter = yes;\ntimeout = 120s;\ncount = 1;\nupstream \"local\" {\n  default = yes;\n  self_scan = yes;\n}\n"
	} else {
		files["worker-proxy.inc"] = "bind_socket = \"127.0.0.1:" + strconv.Itoa(proxy) + "\";\ncount = 1;\n"
	}
	for k, v := range o.LocalD {
		files[k] = v
	}
	// The database directory holds rspamd's hyperscan cache: shared by
	// the tests, so that only the first start compiles (a minute on a
	// busy machine instead of 3 s).
	db := filepath.Join(os.TempDir(), "opes-milter-rspamd-db")
	for _, d := range []string{filepath.Join(dir, "local.d"), db, filepath.Join(dir, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, "local.d", k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if o.Lua != "" {
		if err := os.WriteFile(filepath.Join(dir, "rspamd.local.lua"), []byte(o.Lua), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	args := []string{"-f", "--var", "LOCAL_CONFDIR=" + dir, "--var", "DBDIR=" + db,
		"--var", "RUNDIR=" + filepath.Join(dir, "run"), "--var", "LOGDIR=" + filepath.Join(dir, "run")}
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("_rspamd"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			for _, d := range []string{dir, db} {
				filepath.Walk(d, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
			}
			args = append(args, "-u", "_rspamd", "-g", "_rspamd")
		}
	}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(r.Stop)
	deadline := time.Now().Add(150 * time.Second)
	for !peerprobe.Rspamd(r.Addr) {
		select {
		case <-r.exited:
			t.Fatalf("rspamd exited:\n%s", r.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rspamd did not answer /ping within 150s:\n%s", r.Log())
		}
	}
	if r.MilterAddr != "" {
		for {
			c, err := net.DialTimeout("tcp", r.MilterAddr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rspamd's milter does not listen:\n%s", r.Log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return r
}

// Stop stops rspamd (its whole process group) and waits for it.
func (r *Rspamd) Stop() {
	select {
	case <-r.exited:
		return
	default:
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.exited
	}
}

// Log returns the end of rspamd's log file (call it once rspamd stopped
// or for a failure message).
func (r *Rspamd) Log() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "run", "rspamd.log"))
	if len(b) > 8192 {
		b = b[len(b)-8192:]
	}
	return string(b)
}
