package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// InstanceDir creates a temporary directory for one peer instance, world-readable so
// that peers which drop privileges (postfix, nobody, smmta) can reach their files.
// Its cleanup, which runs after the cleanups registered later (such as Process.Stop),
// kills every process whose working directory is still inside it and then removes it.
func InstanceDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "opes-e2e-"+prefix+"-")
	if err != nil {
		t.Fatalf("e2e: temp dir: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("e2e: temp dir: %v", err)
	}
	if err := writeOwner(dir); err != nil {
		t.Fatalf("e2e: temp dir: %v", err)
	}
	t.Cleanup(func() {
		if killed := KillProcessesIn(dir); len(killed) > 0 {
			t.Logf("e2e: killed leftover processes working in %s: %s", dir, strings.Join(killed, "; "))
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("e2e: remove %s: %v", dir, err)
		}
	})
	return dir
}

// KillProcessesIn sends SIGKILL to every process whose current directory is dir or
// lies below it, waits until they are gone (at most five seconds) and returns them
// as "PID COMMAND LINE". Postfix and Sendmail daemons change into their queue directory, and
// the harness starts every other peer inside its instance directory, so this finds
// whatever a stopped peer left running.
func KillProcessesIn(dir string) []string {
	dir = filepath.Clean(dir)
	pids := processesIn(dir)
	killed := make([]string, 0, len(pids))
	for _, pid := range pids {
		killed = append(killed, strconv.Itoa(pid)+" "+cmdline(pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(processesIn(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return killed
}

// cmdline returns the command line of a process, arguments separated by spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// processesIn lists the live (not zombie) processes working in or below dir.
func processesIn(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+"/")) {
			continue
		}
		if isZombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// isZombie reports whether the process has exited but was not reaped yet.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may contain
	// spaces: "1234 (smtpd) S ...".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// instancePattern matches the directories InstanceDir and BuildBinaries create.
const instancePattern = "opes-e2e-*"

// ownerFile, inside an instance directory, holds the pid and start time of the test
// process that created it, so that SweepStale can tell an abandoned directory from
// one of a test binary still running.
const ownerFile = ".opes-e2e-owner"

// writeOwner records the current process as the owner of dir.
func writeOwner(dir string) error {
	self := os.Getpid()
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(self)+" "+startTime(self)+"\n"), 0o644)
}

// SweepStale removes the instance directories of test binaries that died without
// running their cleanups (killed, or panicked on a go test -timeout), after killing
// the peers still working in them. Directories of live test binaries are left
// alone. It returns what it killed and removed; Main calls it before the tests.
func SweepStale() []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), instancePattern))
	var swept []string
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or being created right now
		}
		pid, start, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		if n, err := strconv.Atoi(pid); err == nil && startTime(n) == start {
			continue // the owner is alive
		}
		for _, k := range KillProcessesIn(dir) {
			swept = append(swept, "killed "+k)
		}
		if os.RemoveAll(dir) == nil {
			swept = append(swept, "removed "+dir)
		}
	}
	return swept
}

// startTime returns field 22 of /proc/PID/stat (start time in clock ticks since
// boot), which tells a process from a later one that reuses its pid; "" if the
// process does not exist.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	// Fields after the command name start with field 3 (state).
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// writeFile writes a file or fails the test.
func writeFile(t testing.TB, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatalf("e2e: %v", err)
	}
}

// mkdirs creates directories (and parents) with the given mode or fails the test.
func mkdirs(t testing.TB, perm os.FileMode, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, perm); err != nil {
			t.Fatalf("e2e: %v", err)
		}
		if err := os.Chmod(d, perm); err != nil {
			t.Fatalf("e2e: %v", err)
		}
	}
}
