// Package peerprobe tells whether the peers that the end-to-end tests and
// opes-bench run (clamd, spamd, rspamd, ICAP servers, anything that
// listens on TCP) are up: one probe per kind of peer, shared by e2e,
// cmd/opes-bench and callout/callouttest, each bounded to a few seconds
// and without side effects on the peer. Standard library only.
package peerprobe

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// dialTimeout and replyTimeout bound one probe.
const (
	dialTimeout  = time.Second
	replyTimeout = 2 * time.Second
)

// ask dials network/addr, writes req and returns the first line of the
// reply up to and including delim (or the first bytes read when delim is
// 0 and the peer ends no line).
func ask(network, addr, req string, delim byte) (string, bool) {
	c, err := net.DialTimeout(network, addr, dialTimeout)
	if err != nil {
		return "", false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(replyTimeout))
	if _, err := io.WriteString(c, req); err != nil {
		return "", false
	}
	line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadString(delim)
	if err != nil && line == "" {
		return "", false
	}
	return line, true
}

// Clamd reports whether clamd at addr ("tcp" or "unix") answers zPING with
// PONG.
func Clamd(network, addr string) bool {
	reply, ok := ask(network, addr, "zPING\x00", 0)
	return ok && reply == "PONG\x00"
}

// Spamd reports whether spamd at addr answers PING with PONG.
func Spamd(addr string) bool {
	line, ok := ask("tcp", addr, "PING SPAMC/1.5\r\n\r\n", '\n')
	return ok && strings.HasPrefix(line, "SPAMD/") && strings.Contains(line, "PONG")
}

// Rspamd reports whether rspamd's normal worker at addr answers /ping
// with 200.
func Rspamd(addr string) bool {
	line, ok := ask("tcp", addr, "GET /ping HTTP/1.0\r\n\r\n", '\n')
	return ok && strings.HasPrefix(line, "HTTP/") && strings.Contains(line, " 200")
}

// ICAP reports whether the ICAP server at addr answers OPTIONS for service
// with 200.
func ICAP(addr, service string) bool {
	req := fmt.Sprintf("OPTIONS icap://%s/%s ICAP/1.0\r\nHost: %s\r\nEncapsulated: null-body=0\r\n\r\n", addr, service, addr)
	line, ok := ask("tcp", addr, req, '\n')
	return ok && strings.HasPrefix(line, "ICAP/1.0 200")
}

// Listening reports whether some process listens on the TCP address addr
// ("127.0.0.1:PORT" or "[::1]:PORT"). It reads /proc/net/tcp and
// /proc/net/tcp6 instead of connecting, so it does not open an SMTP or
// milter session (which would reach the milter) just to learn that the
// peer is up.
func Listening(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if listeningIn(file, ap) {
			return true
		}
	}
	return false
}

// listeningIn scans one /proc/net/tcp* table for a socket in state LISTEN
// (0A) bound to ap or to the wildcard address of ap's family with the same
// port.
func listeningIn(file string, ap netip.AddrPort) bool {
	found := false
	scanTCP(file, func(local, _ netip.AddrPort, fields []string) bool {
		if fields[3] == "0A" && local.Port() == ap.Port() && (local.Addr() == ap.Addr() || local.Addr().IsUnspecified()) {
			found = true
		}
		return !found
	})
	return found
}

// TxQueue returns the tx_queue of the TCP socket local→remote (IPv4) in
// /proc/net/tcp: bytes written to it and not yet acknowledged by the
// peer; 0 when there is no such socket.
func TxQueue(local, remote netip.AddrPort) int {
	n := 0
	scanTCP("/proc/net/tcp", func(l, r netip.AddrPort, fields []string) bool {
		if l != local || r != remote {
			return true
		}
		tx, _, _ := strings.Cut(fields[4], ":")
		v, _ := strconv.ParseUint(tx, 16, 32)
		n = int(v)
		return false
	})
	return n
}

// scanTCP calls f with the local and remote addresses and the fields of
// each socket line of a /proc/net/tcp* table until f returns false.
func scanTCP(file string, f func(local, remote netip.AddrPort, fields []string) bool) {
	fh, err := os.Open(file)
	if err != nil {
		return
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		local, ok1 := ParseProcAddr(fields[1])
		remote, ok2 := ParseProcAddr(fields[2])
		if ok1 && ok2 && !f(local, remote, fields) {
			return
		}
	}
}

// ParseProcAddr decodes an address of /proc/net/tcp ("0100007F:1F90") or
// the 32-hex-digit IPv6 form of /proc/net/tcp6. The kernel prints each
// 32-bit word in host (little-endian) order.
func ParseProcAddr(s string) (netip.AddrPort, bool) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil || (len(hexAddr) != 8 && len(hexAddr) != 32) {
		return netip.AddrPort{}, false
	}
	var b [16]byte
	for w := 0; w < len(hexAddr)/8; w++ {
		v, err := strconv.ParseUint(hexAddr[w*8:w*8+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, false
		}
		b[w*4], b[w*4+1], b[w*4+2], b[w*4+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	var a netip.Addr
	if len(hexAddr) == 8 {
		a = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		a = netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

// PostfixQueueDir is one queue directory of Debian's postfix-files: owned
// by mail_owner (Owner) or root, group setgid_group (Group) or root, Mode.
type PostfixQueueDir struct {
	Name         string
	Owner, Group bool
	Mode         os.FileMode
}

// PostfixQueueDirs are the queue directories a Postfix instance of a test
// or a bench run needs, with the owners and modes "postfix check" gives
// them.
func PostfixQueueDirs() []PostfixQueueDir {
	return []PostfixQueueDir{
		{"active", true, false, 0o700}, {"bounce", true, false, 0o700}, {"corrupt", true, false, 0o700},
		{"defer", true, false, 0o700}, {"deferred", true, false, 0o700}, {"flush", true, false, 0o700},
		{"hold", true, false, 0o700}, {"incoming", true, false, 0o700}, {"private", true, false, 0o700},
		{"maildrop", true, true, 0o730}, {"public", true, true, 0o710}, {"pid", false, false, 0o755},
		{"saved", true, false, 0o700}, {"trace", true, false, 0o700},
	}
}
