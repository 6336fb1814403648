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
)

// DefaultSocketMode is the mode of a unix socket whose Socket.Mode is 0:
// the MTA's group may connect, nobody else.
const DefaultSocketMode os.FileMode = 0o660

// Socket is where the milter listens.
type Socket struct {
	Network string      // "tcp", "tcp6" or "unix"
	Address string      // "host:port" or a path
	Mode    os.FileMode // unix only; 0 means DefaultSocketMode
	Owner   string      // unix only: "user", "user:group" or ":group"; "" keeps the process's
}

// String returns the socket in Postfix syntax.
func (s Socket) String() string {
	switch s.Network {
	case "unix":
		return "unix:" + s.Address
	case "tcp6":
		return "inet6:" + s.Address
	}
	return "inet:" + s.Address
}

// ParseSocket parses a milter socket as Postfix writes it: "inet:host:port"
// (an IPv6 host in brackets), "inet6:[::1]:port" or "inet6:host:port", and
// "unix:/path". Sendmail's "inet:port@host" and "local:/path" are accepted
// too. Port 0 asks the system for a free port.
func ParseSocket(s string) (Socket, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Socket{}, fmt.Errorf("%w: %q: want inet:host:port, inet6:host:port or unix:/path", ErrBadSocket, s)
	}
	switch kind {
	case "unix", "local":
		return Socket{Network: "unix", Address: rest}, nil
	case "inet", "inet6":
		host, port, err := splitHostPort(rest, kind == "inet6")
		if err != nil {
			return Socket{}, fmt.Errorf("%w: %q: %v", ErrBadSocket, s, err)
		}
		network := "tcp"
		if kind == "inet6" {
			network = "tcp6"
		}
		return Socket{Network: network, Address: net.JoinHostPort(host, port)}, nil
	}
	return Socket{}, fmt.Errorf("%w: %q: unknown type %q", ErrBadSocket, s, kind)
}

// splitHostPort accepts "host:port", "[v6]:port", "port@host" and, for
// inet6, an unbracketed IPv6 address before the last colon.
func splitHostPort(s string, v6 bool) (host, port string, err error) {
	if p, h, ok := strings.Cut(s, "@"); ok {
		host, port = strings.Trim(h, "[]"), p
	} else if strings.HasPrefix(s, "[") || !v6 {
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", "", err
		}
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return "", "", errors.New("missing port")
		}
		host, port = s[:i], s[i+1:]
	}
	n, perr := strconv.ParseUint(port, 10, 16)
	if perr != nil {
		return "", "", fmt.Errorf("bad port %q", port)
	}
	port = strconv.FormatUint(n, 10)
	if v6 && host != "" {
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			return "", "", fmt.Errorf("inet6 with IPv4 address %q", host)
		}
	}
	return host, port, nil
}

// Listen opens the socket. For a unix socket it first removes a stale
// socket file (refusing when a process still answers on it, or when the
// path is not a socket), then applies Mode and Owner.
func Listen(s Socket) (net.Listener, error) {
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
	var ln net.Listener
	err := withUmask(0o177, func() (err error) {
		ln, err = net.Listen("unix", s.Address)
		return err
	})
	if err != nil {
		return nil, err
	}
	mode := s.Mode
	if mode == 0 {
		mode = DefaultSocketMode
	}
	if err := os.Chmod(s.Address, mode); err != nil {
		_ = ln.Close()
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
