package e2e

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
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
	return peerprobe.Listening(addr)
}
