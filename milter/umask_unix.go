//go:build unix

package milter

import "syscall"

// withUmask runs fn with the process umask set to mask, so that a socket
// file is created with its final permissions (no chmod by path, which
// would follow a symlink). The umask is process-wide: Listen runs at
// start-up, before anything else creates files.
func withUmask(mask int, fn func() error) error {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	return fn()
}
