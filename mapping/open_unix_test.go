//go:build unix

package mapping

import (
	"syscall"
	"testing"
	"time"
)

// TestLoadFileFIFO: a configuration path that is a FIFO is refused at once
// instead of blocking until something writes to it (which held up SIGHUP,
// then SIGTERM, and check).
func TestLoadFileFIFO(t *testing.T) {
	path := t.TempDir() + "/fifo.toml"
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := LoadFile(path)
		done <- err
	}()
	select {
	case err := <-done:
		if want := path + ": not a regular file (p---------)"; err == nil || err.Error() != want {
			t.Errorf("LoadFile = %v, want %s", err, want)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("LoadFile blocks on a FIFO")
	}
}
