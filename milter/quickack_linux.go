package milter

import (
	"net"
	"syscall"
)

// quickAck makes the kernel acknowledge the MTA's next packets at once.
// Postfix leaves Nagle on for milter sockets; when opes-milter does not
// answer a packet (macros, events negotiated with SMFIP_NR_*, DATA
// negotiated away) the kernel would delay its ACK hoping to piggyback it on
// a reply that never comes, and Postfix would hold its next small writes
// until that ACK: about 40 ms per message. TCP_QUICKACK is not sticky, so
// it is set again after every reply. A no-op for unix sockets.
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
