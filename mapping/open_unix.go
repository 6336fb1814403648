//go:build unix

package mapping

import (
	"os"
	"syscall"
)

// openConfig opens a configuration file without blocking: a FIFO (or a
// device) opened for reading would wait for a writer, holding up a reload
// (SIGHUP), the shutdown queued behind it, and check.
func openConfig(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
}
