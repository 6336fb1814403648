package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// builtBinaries is what BuildBinaries built for this test binary. It is the
// harness's package-level state with portsGiven: building once per test binary is the point,
// and Main removes the directory when the tests are done.
var builtBinaries struct {
	once    sync.Once
	dir     string
	milter  string
	callout string
	err     error
}

// BuildBinaries builds cmd/opes-milter and cmd/opes-callout into a temporary
// directory, once per test binary, and returns their paths. The test fails if the
// build does. Tests that use it must run under Main so the directory is removed.
func BuildBinaries(t testing.TB) (milterBin, calloutBin string) {
	t.Helper()
	b := &builtBinaries
	b.once.Do(func() {
		b.err = buildBinaries(RepoRoot(t))
	})
	if b.err != nil {
		t.Fatalf("e2e: %v", b.err)
	}
	return b.milter, b.callout
}

// buildBinaries runs go build for both commands into a new temporary directory.
func buildBinaries(root string) error {
	b := &builtBinaries
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	dir, err := os.MkdirTemp("", "opes-e2e-bin-")
	if err != nil {
		return err
	}
	b.dir = dir
	if err := writeOwner(dir); err != nil {
		return err
	}
	cmd := exec.Command(goBin, "build", "-o", dir+"/", "./cmd/opes-milter", "./cmd/opes-callout")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/opes-milter ./cmd/opes-callout: %w\n%s", err, out)
	}
	b.milter = filepath.Join(dir, "opes-milter")
	b.callout = filepath.Join(dir, "opes-callout")
	return nil
}

// Main removes what earlier test binaries left behind (SweepStale), runs the
// tests, and then removes what BuildBinaries built. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
func Main(m *testing.M) int {
	for _, s := range SweepStale() {
		fmt.Fprintf(os.Stderr, "e2e: stale: %s\n", s)
	}
	code := m.Run()
	stopSharedScanners()
	if dir := builtBinaries.dir; dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: remove %s: %v\n", dir, err)
		}
	}
	return code
}
