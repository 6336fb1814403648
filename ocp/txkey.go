package ocp

import (
	"net"
)

// Key names the transaction the same way on both sides of the
// connection: the processor's address of the connection and the xid,
// "127.0.0.1:41234/7". The logs of opes-milter and opes-callout carry it
// (ocp_tx), so that the two lines about one transaction can be found
// from either, even when the MTA gave the message no queue id (every
// recipient refused).
func (t *txCore) Key() string {
	prefix := t.c.localKey
	if t.server {
		prefix = t.c.remoteKey
	}
	return prefix + string(t.xidA)
}

// addrKey returns "ADDR/" for a, the prefix of the keys of a connection's
// transactions ("" when the connection has no address).
func addrKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String() + "/"
}
