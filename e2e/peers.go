package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// InstallHint is appended to every "peer missing" failure.
const InstallHint = "run .ci/install-peers.sh as root to install the real test peers"

// DefaultSendmailRoot is where .ci/install-peers.sh unpacks the Sendmail packages.
// The environment variable OPES_SENDMAIL_ROOT overrides it.
const DefaultSendmailRoot = "/opt/opes-milter-peers/sendmail"

// modulePath identifies the repository root when walking up from the working directory.
const modulePath = "github.com/opes-milter/opes-milter"

// RequirePeer returns the absolute path of the peer program name, looked up in PATH
// and then in /usr/sbin and /usr/bin (a non-root PATH often lacks /usr/sbin). A
// missing program fails the test with InstallHint; it never skips.
func RequirePeer(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/libexec"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("e2e: peer program %q not found: %s", name, InstallHint)
	return ""
}

// RequireRoot fails the test unless it runs as root, which Postfix, smtp-sink -u
// and the namespaces used for Sendmail need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("e2e: the real-peer tests must run as root (euid %d)", os.Geteuid())
	}
}

// SendmailRoot returns the directory the Sendmail packages were unpacked into and
// fails the test when the Sendmail binary or its cf files are not there.
func SendmailRoot(t testing.TB) string {
	t.Helper()
	root := os.Getenv("OPES_SENDMAIL_ROOT")
	if root == "" {
		root = DefaultSendmailRoot
	}
	for _, p := range []string{sendmailBinary(root), filepath.Join(sendmailCFDir(root), "m4", "cf.m4")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("e2e: Sendmail not unpacked (%v): %s", err, InstallHint)
		}
	}
	return root
}

func sendmailBinary(root string) string { return filepath.Join(root, "usr/libexec/sendmail/sendmail") }
func sendmailCFDir(root string) string  { return filepath.Join(root, "usr/share/sendmail/cf") }

// RepoRoot returns the root of the opes-milter repository: the first directory at or
// above the working directory whose go.mod declares the module, or else the parent
// of this source file's directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if declaresModule(filepath.Join(dir, "go.mod")) {
				return dir
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Dir(filepath.Dir(file))
		if declaresModule(filepath.Join(dir, "go.mod")) {
			return dir
		}
	}
	t.Fatalf("e2e: cannot find the repository root (go.mod of %s)", modulePath)
	return ""
}

// declaresModule reports whether the go.mod at path declares modulePath.
func declaresModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == modulePath
		}
	}
	return false
}

// readRepoFile returns the contents of a file given relative to the repository root.
func readRepoFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), rel))
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return string(b)
}
