package bridge

import (
	"io"
	"path/filepath"
	"testing"
)

// TestSpoolUnlinked: the bridge's spools leave nothing in the spool
// directory, even while they hold a file (internal/spool has the tests of
// the spool itself).
func TestSpoolUnlinked(t *testing.T) {
	dir := t.TempDir()
	s := NewSpool(dir, 10)
	s.Write([]byte("1234567890abc"))
	if !s.OnDisk() {
		t.Fatal("still in memory above the threshold")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Fatalf("spool file linked in the directory: %v", files)
	}
	if got, _ := io.ReadAll(s.Reader()); string(got) != "1234567890abc" {
		t.Fatalf("content %q", got)
	}
	s.Close()
}
