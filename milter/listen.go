package milter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/mapping"
)

// Listen opens the socket (mapping.ParseSocket reads one from the
// configuration). For a unix socket it first removes a stale socket file
// (refusing when a process still answers on it, or when the path is not a
// socket), then applies Mode (mapping.DefaultSocketMode when 0) and Owner.
func Listen(s mapping.Socket) (net.Listener, error) {
	if s.Network != "unix" {
		// No TCP keep-alive on MTA connections: the MTA is local and
		// keeps its own timeouts, and enabling it costs four setsockopt
		// calls per accepted connection.
		lc := net.ListenConfig{KeepAlive: -1}
		return lc.Listen(context.Background(), s.Network, s.Address)
	}
	if s.Address == "" {
		return nil, fmt.Errorf("%w: empty unix socket path", ErrBadSocket)
	}
	if err := removeStale(s.Address); err != nil {
		return nil, err
	}
	mode := s.Mode
	if mode == 0 {
		mode = mapping.DefaultSocketMode
	}
	// The socket is created with its final mode (bind applies the umask):
	// no chmod by path afterwards, which would follow a symlink an
	// attacker swapped in for the socket in a writable directory.
	var ln net.Listener
	err := withUmask(0o777&^int(mode.Perm()), func() (err error) {
		ln, err = net.Listen("unix", s.Address)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.Owner != "" {
		uid, gid, err := lookupOwner(s.Owner)
		if err == nil {
			err = os.Lchown(s.Address, uid, gid)
		}
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("milter: socket owner %q: %w", s.Owner, err)
		}
	}
	return ln, nil
}

// removeStale removes path if it is a socket nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%w: %s exists and is not a socket", ErrBadSocket, path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("%w: %s", ErrSocketInUse, path)
	}
	return os.Remove(path)
}

// lookupOwner resolves "user", "user:group" or ":group" (names or
// numbers); -1 leaves an id unchanged.
func lookupOwner(owner string) (uid, gid int, err error) {
	uid, gid = -1, -1
	u, g, _ := strings.Cut(owner, ":")
	if u != "" {
		if uid, err = strconv.Atoi(u); err != nil {
			usr, lerr := user.Lookup(u)
			if lerr != nil {
				return 0, 0, lerr
			}
			uid, _ = strconv.Atoi(usr.Uid)
		}
	}
	if g != "" {
		if gid, err = strconv.Atoi(g); err != nil {
			grp, lerr := user.LookupGroup(g)
			if lerr != nil {
				return 0, 0, lerr
			}
			gid, _ = strconv.Atoi(grp.Gid)
		}
	}
	return uid, gid, nil
}
