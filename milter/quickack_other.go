//go:build !linux

package milter

import "net"

// quickAck is Linux-only (TCP_QUICKACK); elsewhere the delayed-ACK stall
// it avoids may remain.
func quickAck(net.Conn) {}
