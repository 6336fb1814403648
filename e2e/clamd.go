package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// TestVirus is the test attachment: the bytes the test clamd's only
// signature (a .hdb line with their MD5 and size) matches, reported as
// TestVirusName. No official signature database is used, ever.
const TestVirus = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$OPES-TEST-SIGNATURE-FILE!$H+H*\n"

// TestVirusName is clamd's name for TestVirus.
const TestVirusName = "Opes.Test.Signature.UNOFFICIAL"

// clamdConf is the test clamd's configuration: AlertExceedsMax so that
// clamd's limits are findings, not silent passes; StreamMaxLength 10M and
// MaxRecursion 17 as the antivirus scenarios expect.
const clamdConf = `DatabaseDirectory @DIR@/db
TCPSocket @PORT@
TCPAddr 127.0.0.1
LocalSocket @DIR@/clamd.sock
LocalSocketMode 666
Foreground yes
LogFile @DIR@/clamd.log
PidFile @DIR@/clamd.pid
User clamav
AlertExceedsMax yes
StreamMaxLength 10M
MaxRecursion 17
MaxThreads 8
`

// Clamd is a ClamAV daemon on a loopback port and a unix socket, with a
// database directory holding only the test signature.
type Clamd struct {
	Dir    string
	Addr   string // 127.0.0.1:PORT
	Socket string // the unix socket path
	cmd    Command
	proc   *Process
}

// writeClamdDir writes the database and clamd.conf into dir (owned by
// clamav, as clamd drops to it).
func writeClamdDir(t testing.TB, dir, addr string) string {
	t.Helper()
	u, err := user.Lookup("clamav")
	if err != nil {
		t.Fatalf("e2e: no clamav user (apt-get install clamav-daemon): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	mkdirs(t, 0o755, filepath.Join(dir, "db"))
	sum := md5.Sum([]byte(TestVirus))
	writeFile(t, filepath.Join(dir, "db", "test.hdb"),
		fmt.Sprintf("%s:%d:Opes.Test.Signature\n", hex.EncodeToString(sum[:]), len(TestVirus)), 0o644)
	conf := strings.NewReplacer("@DIR@", dir, "@PORT@", portOf(addr)).Replace(clamdConf)
	writeFile(t, filepath.Join(dir, "clamd.conf"), conf, 0o644)
	for _, p := range []string{dir, filepath.Join(dir, "db"), filepath.Join(dir, "db", "test.hdb")} {
		chown(t, p, uid, gid)
	}
	return filepath.Join(dir, "clamd.conf")
}

// StartClamd starts a clamd of the test's own (stopped at its end, or
// earlier with Stop) and waits until it answers zPING with PONG.
func StartClamd(t testing.TB) *Clamd {
	t.Helper()
	RequireRoot(t)
	bin := RequirePeer(t, "clamd")
	dir := InstanceDir(t, "clamd")
	c := &Clamd{Dir: dir, Addr: FreeAddr(t), Socket: filepath.Join(dir, "clamd.sock")}
	conf := writeClamdDir(t, dir, c.Addr)
	c.cmd = Command{
		Name: "clamd", Argv: []string{bin, "-c", conf}, Dir: dir,
		Ready:    func() bool { return peerprobe.Clamd("tcp", c.Addr) },
		Diagnose: func() string { return readAll(filepath.Join(dir, "clamd.log")) },
	}
	c.proc = c.cmd.Start(t)
	return c
}

// Stop stops clamd and waits for it.
func (c *Clamd) Stop() { _ = c.proc.Stop() }

// Restart starts the stopped clamd again on the same socket and port.
func (c *Clamd) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	c.proc = c.cmd.Start(t)
}

// Log returns clamd's log file so far.
func (c *Clamd) Log() string { return readAll(filepath.Join(c.Dir, "clamd.log")) }

// CICAP is a c-icap server with its virus_scan service (as "avscan") over a
// clamd.
type CICAP struct {
	Dir  string
	Addr string // 127.0.0.1:PORT
	proc *Process
}

// URL is the ICAP URL of the antivirus service.
func (c *CICAP) URL() string { return "icap://" + c.Addr + "/avscan" }

const cicapConf = `PidFile @DIR@/c-icap.pid
CommandsSocket @DIR@/c-icap.ctl
Port @ADDR@
User nobody
Group nogroup
TmpDir @DIR@/tmp
StartServers 1
MaxServers 2
ThreadsPerChild 8
ModulesDir /usr/lib/x86_64-linux-gnu/c_icap
ServicesDir /usr/lib/x86_64-linux-gnu/c_icap
TemplateDir /usr/share/c_icap/templates/
LoadMagicFile /etc/c-icap/c-icap.magic
ServerLog @DIR@/tmp/server.log
AccessLog @DIR@/tmp/access.log
Module common clamd_mod.so
clamd_mod.ClamdHost 127.0.0.1
clamd_mod.ClamdPort @CLAMD_PORT@
Service antivirus_module virus_scan.so
ServiceAlias avscan virus_scan?allow204=on&sizelimit=off&mode=simple
virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE
virus_scan.DefaultEngine clamd
`

// StartCICAP starts c-icap over clamd and waits until OPTIONS answers.
func StartCICAP(t testing.TB, clamd *Clamd) *CICAP {
	t.Helper()
	RequireRoot(t)
	bin := RequirePeer(t, "c-icap")
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/c_icap/virus_scan.so"); err != nil {
		t.Fatal("e2e: c-icap's virus_scan module is not installed (apt-get install libc-icap-mod-virus-scan)")
	}
	dir := InstanceDir(t, "c-icap")
	c := &CICAP{Dir: dir, Addr: FreeAddr(t)}
	// c-icap writes its pid file, control socket and logs as nobody.
	mkdirs(t, 0o777, filepath.Join(dir, "tmp"))
	for _, d := range []string{dir, filepath.Join(dir, "tmp")} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	conf := strings.NewReplacer("@DIR@", dir, "@ADDR@", c.Addr, "@CLAMD_PORT@", portOf(clamd.Addr)).Replace(cicapConf)
	writeFile(t, filepath.Join(dir, "c-icap.conf"), conf, 0o644)
	c.proc = Command{
		Name: "c-icap", Argv: []string{bin, "-N", "-f", filepath.Join(dir, "c-icap.conf")}, Dir: dir,
		Ready:    func() bool { return peerprobe.ICAP(c.Addr, "avscan") },
		Diagnose: func() string { return readAll(filepath.Join(dir, "tmp", "server.log")) },
	}.Start(t)
	return c
}

// sharedScanners is one clamd and one c-icap over it for the whole test
// binary: clamd takes about two seconds to start, so the scenarios that
// do not stop it share one. Main stops them.
var sharedScanners struct {
	mu    sync.Mutex
	clamd *Clamd
	cicap *CICAP
	tb    *sharedTB
}

// SharedClamd returns the binary's clamd and c-icap, starting them on first
// use. Tests must not stop them.
func SharedClamd(t testing.TB) (*Clamd, *CICAP) {
	t.Helper()
	s := &sharedScanners
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clamd == nil {
		if s.tb == nil {
			s.tb = &sharedTB{TB: t}
		}
		s.tb.TB = t
		clamd := StartClamd(s.tb)
		cicap := StartCICAP(s.tb, clamd)
		s.clamd, s.cicap = clamd, cicap
	}
	return s.clamd, s.cicap
}

// stopSharedScanners runs the cleanups of the shared scanners (from Main).
func stopSharedScanners() {
	s := &sharedScanners
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tb != nil {
		s.tb.cleanup()
	}
}

// sharedTB is the testing.TB the shared scanners start with: it reports
// to the first test that needed them but keeps the cleanups until Main
// ends.
type sharedTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (s *sharedTB) Cleanup(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

func (s *sharedTB) cleanup() {
	s.mu.Lock()
	fs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Failed reports false: the shared scanners outlive the test that started
// them, whose verdict is not theirs.
func (s *sharedTB) Failed() bool { return false }

// Helper marks nothing; the embedded TB's Helper would mark this file.
func (s *sharedTB) Helper() {}

// Logf writes to standard error: the test that started the scanners may be
// over when their cleanups log.
func (s *sharedTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: shared scanners: "+format+"\n", args...)
}

// Errorf logs like Logf; a shared scanner's cleanup fails no test.
func (s *sharedTB) Errorf(format string, args ...any) { s.Logf(format, args...) }
