package bridge

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestSpoolMovesToFile(t *testing.T) {
	dir := t.TempDir()
	s := NewSpool(dir, 10)
	s.Write([]byte("12345"))
	if s.OnDisk() {
		t.Fatal("on disk below the threshold")
	}
	s.Write([]byte("67890abc"))
	if !s.OnDisk() {
		t.Fatal("still in memory above the threshold")
	}
	files, _ := filepath.Glob(filepath.Join(dir, spoolPrefix+"*"))
	if len(files) != 1 {
		t.Fatalf("spool files = %v", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v", fi.Mode(), err)
	}
	got, _ := io.ReadAll(s.Reader())
	if string(got) != "1234567890abc" {
		t.Fatalf("content %q", got)
	}
	r, _ := s.Section(3, 4)
	got, _ = io.ReadAll(r)
	if string(got) != "4567" {
		t.Fatalf("section %q", got)
	}
	s.Close()
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Fatalf("left behind: %v", files)
	}
}

func TestSpoolDiskFull(t *testing.T) {
	s := NewSpool(filepath.Join(t.TempDir(), "missing"), 4)
	if _, err := s.Write(bytes.Repeat([]byte("x"), 10)); err == nil {
		t.Fatal("no error when the spool file cannot be created")
	}
}

func TestRemoveStaleSpools(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, spoolPrefix+"1"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "other"), nil, 0o600)
	n, err := RemoveStaleSpools(dir)
	if err != nil || n != 1 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err != nil {
		t.Fatal("removed a file that is not a spool")
	}
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
