package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// portsGiven holds the ports FreePort returned in this test binary. The kernel
// may hand out a port again right after it was closed; two peers of one test
// given the same port would have one fail to bind while the other answers in its
// place. Like builtBinaries, it is harness state for the whole test binary.
var portsGiven struct {
	sync.Mutex
	ports map[int]bool
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and that
// this test binary has not handed out before. The port is not reserved: start
// the peer that binds it soon.
func FreePort(t testing.TB) int {
	t.Helper()
	portsGiven.Lock()
	defer portsGiven.Unlock()
	if portsGiven.ports == nil {
		portsGiven.ports = make(map[int]bool)
	}
	for range 100 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("e2e: free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portsGiven.ports[port] {
			portsGiven.ports[port] = true
			return port
		}
	}
	t.Fatal("e2e: no free port that was not handed out before")
	return 0
}

// FreeAddr returns "127.0.0.1:PORT" for a free port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}

// Listening reports whether some process listens on the TCP address addr
// ("127.0.0.1:PORT" or "[::1]:PORT"). It reads /proc/net/tcp and /proc/net/tcp6
// instead of connecting, so it does not open an SMTP session (which would reach the
// milter) just to learn that the peer is up.
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

// listeningIn scans one /proc/net/tcp* table for a socket in state LISTEN (0A) bound
// to ap or to the wildcard address of ap's family with the same port.
func listeningIn(file string, ap netip.AddrPort) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		local, ok := parseProcAddr(fields[1])
		if !ok || local.Port() != ap.Port() {
			continue
		}
		if local.Addr() == ap.Addr() || local.Addr().IsUnspecified() {
			return true
		}
	}
	return false
}

// parseProcAddr decodes "0100007F:1F90" (IPv4) or the 32-hex-digit IPv6 form of
// /proc/net/tcp6. The kernel prints each 32-bit word in host (little-endian) order.
func parseProcAddr(s string) (netip.AddrPort, bool) {
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
