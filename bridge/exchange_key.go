package bridge

// ocpKey names the exchange's OCP transaction as both daemons log it
// (ocp_tx: the processor's address of the connection and the xid); "" when
// there is none. tx is set when the exchange is made and never changes,
// so no lock is needed.
func (x *exchange) ocpKey() string {
	if x == nil || x.tx == nil {
		return ""
	}
	return x.tx.Key()
}
