package mapping

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Socket is a milter listening socket: the one socket type of the project
// (package milter listens on it).
type Socket struct {
	// Network is "tcp", "tcp6" or "unix", as net.Listen takes it.
	Network string
	// Address is host:port for tcp and tcp6, the path for unix.
	Address string
	// Mode is the permission of a unix socket file; 0 for tcp (and, for a
	// Socket not built by the configuration, DefaultSocketMode).
	Mode os.FileMode
	// Owner is "user", "user:group" or ":group" for a unix socket file, ""
	// to leave the owner alone.
	Owner string
}

// String returns the socket in Postfix syntax (inet:host:port,
// inet6:[addr]:port, unix:/path).
func (s Socket) String() string {
	switch s.Network {
	case "unix":
		return "unix:" + s.Address
	case "tcp6":
		return "inet6:" + s.Address
	default:
		return "inet:" + s.Address
	}
}

// ParseSocket parses a milter socket as Postfix or Sendmail write it:
//
//   - inet:host:port, with an IPv6 address in brackets (inet:[::1]:8890);
//   - inet6:[addr]:port (or inet6:addr:port), an IPv6 address;
//   - inet:port@host and inet6:port@host, Sendmail's form (as clamav-milter
//     and OpenDKIM accept it), the host optionally in brackets;
//   - unix:/path, and Sendmail's local:/path.
//
// Port 0 asks the system for a free port. A host is an IPv4 address, an
// IPv6 address or a DNS name; use 0.0.0.0 or [::] for all addresses.
func ParseSocket(s string) (Socket, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Socket{}, errors.New(`want inet:host:port, inet6:[addr]:port or unix:/path`)
	}
	switch kind {
	case "unix", "local":
		if rest == "" {
			return Socket{}, errors.New("empty unix socket path")
		}
		if strings.ContainsRune(rest, 0) {
			return Socket{}, errors.New("NUL in unix socket path")
		}
		return Socket{Network: "unix", Address: rest}, nil
	case "inet", "inet6":
		var host, port string
		if p, h, sendmail := strings.Cut(rest, "@"); sendmail {
			host, port = h, p
		} else {
			i := strings.LastIndexByte(rest, ':')
			if i < 0 {
				return Socket{}, errors.New("missing :port")
			}
			host, port = rest[:i], rest[i+1:]
		}
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
		if host == "" {
			return Socket{}, errors.New(`missing host (use 0.0.0.0 or [::] for all addresses)`)
		}
		if err := checkPort(port); err != nil {
			return Socket{}, err
		}
		network := "tcp"
		if kind == "inet6" {
			network = "tcp6"
			a, err := netip.ParseAddr(host)
			if err != nil || !a.Is6() || a.Is4In6() {
				return Socket{}, errors.New("inet6 needs an IPv6 address, like inet6:[::1]:8890")
			}
		} else if strings.Contains(host, ":") {
			if _, err := netip.ParseAddr(host); err != nil {
				return Socket{}, errors.New("bad IPv6 address " + strconv.Quote(host))
			}
		} else if err := checkHost(host); err != nil {
			return Socket{}, err
		}
		return Socket{Network: network, Address: net.JoinHostPort(host, port)}, nil
	}
	return Socket{}, errors.New(`unknown socket type ` + strconv.Quote(kind) + ` (want inet, inet6 or unix)`)
}

// parseHostPort checks a host:port address (a callout server, a listener).
func parseHostPort(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", errors.New("want host:port, or [addr]:port for IPv6")
	}
	if host == "" {
		return "", errors.New("missing host")
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", errors.New("bad IPv6 address " + strconv.Quote(host))
		}
	} else if err := checkHost(host); err != nil {
		return "", err
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

func checkPort(port string) error {
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("bad port " + strconv.Quote(port))
	}
	return nil
}

// checkHost accepts an IPv4 address or a DNS name.
func checkHost(h string) error {
	if len(h) > 253 {
		return errors.New("host name too long")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("bad host name " + strconv.Quote(h))
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New("bad host name " + strconv.Quote(h))
			}
		}
	}
	return nil
}
