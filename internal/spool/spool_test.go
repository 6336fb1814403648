package spool

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMovesToUnlinkedFile(t *testing.T) {
	dir := t.TempDir()
	s := New(Options{Dir: dir, Threshold: 10, Prefix: "test-spool-"})
	s.Write([]byte("12345"))
	if s.OnDisk() {
		t.Fatal("on disk below the threshold")
	}
	s.WriteString("67890abc")
	if !s.OnDisk() {
		t.Fatal("still in memory above the threshold")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Fatalf("spool file linked in the directory: %v", files)
	}
	fi, err := s.file.Stat()
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v", fi.Mode(), err)
	}
	if got, _ := io.ReadAll(s.Reader()); string(got) != "1234567890abc" {
		t.Fatalf("content %q", got)
	}
	r, _ := s.Section(3, 4)
	if got, _ := io.ReadAll(r); string(got) != "4567" {
		t.Fatalf("section %q", got)
	}
	if _, err := s.Section(10, 4); err == nil {
		t.Fatal("section beyond the end accepted")
	}
	if p, err := s.Peek(4); err != nil || string(p) != "1234" {
		t.Fatalf("Peek = %q, %v", p, err)
	}
	if s.Size() != 13 {
		t.Fatalf("Size = %d", s.Size())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryOnly(t *testing.T) {
	s := New(Options{Dir: filepath.Join(t.TempDir(), "missing"), Threshold: -1})
	big := strings.Repeat("x", 100<<10)
	if _, err := s.WriteString(big); err != nil || s.OnDisk() {
		t.Fatalf("negative threshold: %v, on disk %v", err, s.OnDisk())
	}
	mem, f, n := s.Detach()
	if f != nil || n != int64(len(big)) || string(mem) != big {
		t.Fatalf("Detach: %d bytes, file %v, size %d", len(mem), f, n)
	}
	if s.Size() != 0 {
		t.Fatal("spool not empty after Detach")
	}
}

func TestDetachFile(t *testing.T) {
	s := New(Options{Dir: t.TempDir(), Threshold: 2})
	s.WriteString("abcdef")
	mem, f, n := s.Detach()
	if mem != nil || f == nil || n != 6 {
		t.Fatalf("Detach: %q, %v, %d", mem, f, n)
	}
	defer f.Close()
	b := make([]byte, 6)
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != "abcdef" {
		t.Fatalf("detached file: %q, %v", b, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDiskFull(t *testing.T) {
	s := New(Options{Dir: filepath.Join(t.TempDir(), "missing"), Threshold: 4})
	if _, err := s.Write(bytes.Repeat([]byte("x"), 10)); err == nil {
		t.Fatal("no error when the spool file cannot be created")
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p-1"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "other"), nil, 0o600)
	n, err := RemoveStale(dir, "p-")
	if err != nil || n != 1 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err != nil {
		t.Fatal("removed a file that is not a spool")
	}
}

// pool is a Buffers that counts.
type pool struct {
	free     [][]byte
	got, put int
}

func (p *pool) Get() []byte {
	p.got++
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, growMin)
}

func (p *pool) Put(b []byte) { p.put++; p.free = append(p.free, b) }

// TestBuffersReuse: a spool whose memory came from a closed one holds
// exactly what was written to it, and the memory goes back on Close and
// when the spool moves to its file.
func TestBuffersReuse(t *testing.T) {
	bufs := &pool{}
	for i, fill := range []byte{'a', 'b', 'c'} {
		s := New(Options{Dir: t.TempDir(), Threshold: 1 << 20, Buffers: bufs})
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
	s := New(Options{Dir: t.TempDir(), Threshold: 4, Buffers: bufs})
	s.WriteString("ab")
	s.WriteString("cdef")
	s.Close()
	if bufs.got != 4 || bufs.put != 4 {
		t.Fatalf("got %d, put %d buffers; want 4 and 4", bufs.got, bufs.put)
	}
}

// oneByteReader hands out its data one byte per Read, ending with the last
// byte and io.EOF together, as some readers do.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0], r.b = r.b[0], r.b[1:]
	if len(r.b) == 0 {
		return 1, io.EOF
	}
	return 1, nil
}

// TestReadFrom: io.Copy into a spool reads straight into it, keeps at
// most Threshold bytes in memory and moves to the file beyond, with the
// same content and size as Write.
func TestReadFrom(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 2000) // 32,000 bytes
	tests := []struct {
		name      string
		threshold int64
		prefix    string
		src       func() io.Reader
		onDisk    bool
	}{
		{"memory", -1, "", func() io.Reader { return io.MultiReader(bytes.NewReader(data)) }, false},
		{"just below", int64(len(data)), "", func() io.Reader { return io.MultiReader(bytes.NewReader(data)) }, false},
		{"just above", int64(len(data)) - 1, "", func() io.Reader { return io.MultiReader(bytes.NewReader(data)) }, true},
		{"after a write", 100, "head", func() io.Reader { return io.MultiReader(bytes.NewReader(data)) }, true},
		{"zero threshold", 0, "", func() io.Reader { return io.MultiReader(bytes.NewReader(data)) }, true},
		{"byte by byte", 1 << 20, "", func() io.Reader { return &oneByteReader{b: data} }, false},
		{"sized", -1, "", func() io.Reader { return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))) }, false},
		{"sized above", 1000, "head", func() io.Reader { return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))) }, true},
		{"sized below", 1 << 20, "head", func() io.Reader { return bytes.NewReader(data) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Dir: t.TempDir(), Threshold: tt.threshold, Buffers: &pool{}})
			defer s.Close()
			s.WriteString(tt.prefix)
			n, err := io.Copy(s, tt.src())
			if err != nil || n != int64(len(data)) {
				t.Fatalf("Copy = %d, %v; want %d", n, err, len(data))
			}
			if tt.threshold >= 0 && int64(len(s.mem)) > tt.threshold {
				t.Fatalf("%d bytes in memory, threshold %d", len(s.mem), tt.threshold)
			}
			if s.OnDisk() != tt.onDisk {
				t.Fatalf("OnDisk = %v, want %v", s.OnDisk(), tt.onDisk)
			}
			if tt.name == "sized" && cap(s.mem) >= len(data)+readFromMin {
				t.Errorf("a reader of known size took %d bytes of memory for %d", cap(s.mem), len(data))
			}
			want := append([]byte(tt.prefix), data...)
			if got, _ := io.ReadAll(s.Reader()); !bytes.Equal(got, want) || s.Size() != int64(len(want)) {
				t.Fatalf("read %d bytes, Size %d; want %d", len(got), s.Size(), len(want))
			}
		})
	}
}
