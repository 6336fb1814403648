package bridge

import (
	"bytes"
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

// TestPooledSpoolReuse: a spool whose memory came from a closed one holds
// exactly what was written to it.
func TestPooledSpoolReuse(t *testing.T) {
	bufs := newBufPool(spoolBufMin, spoolBufMax)
	for i, fill := range []byte{'a', 'b', 'c'} {
		s := newPooledSpool(t.TempDir(), 1<<20, bufs)
		want := bytes.Repeat([]byte{fill}, 10<<10-i)
		if _, err := s.Write(want); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s.Reader())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: read %d bytes (%v), want %d of %q", i, len(got), err, len(want), fill)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
