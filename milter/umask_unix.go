//go:build unix

package milter

import "syscall"

// withUmask runs fn with the process umask set to mask, so that a socket
// file is never reachable with looser permissions than its final ones
// between its creation and the chmod. The umask is process-wide: Listen
// runs at start-up, before anything else creates files.
func withUmask(mask int, fn func() error) error {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	return fn()
}
