package ocp

import "strconv"

// Key names the transaction the same way on both sides of the
// connection: the processor's address of the connection and the xid,
// "127.0.0.1:41234/7". The logs of opes-milter and opes-callout carry it
// (ocp_tx), so that the two lines about one transaction can be found
// from either, even when the MTA gave the message no queue id (every
// recipient refused).
func (t *txCore) Key() string {
	a := t.c.nc.LocalAddr()
	if t.server {
		a = t.c.nc.RemoteAddr()
	}
	if a == nil {
		return strconv.FormatInt(t.xid, 10)
	}
	return a.String() + "/" + strconv.FormatInt(t.xid, 10)
}
