package ocpsmtp

import (
	"errors"

	"github.com/opes-milter/opes-milter/ocp"
)

// ParamServiceFailure is the named parameter on a server's failed TE that
// says the transaction failed because one service failed (its scanner is
// down, too slow or broke its protocol), not the callout server: its value
// is the service's URI (docs/profile.md, section 10.1). The processor
// applies the chain's failure policy as for any failed transaction, but
// does not count it against the callout server (its circuit breaker).
const ParamServiceFailure = "Service-Failure"

// ServiceFailureParam returns the Service-Failure parameter for the
// service uri.
func ServiceFailureParam(uri string) ocp.Param {
	return ocp.NewParam(ParamServiceFailure, ocp.Atom(uri))
}

// ServiceFailure reports whether err is a transaction ended by the server
// with a Service-Failure parameter, and the failed service's URI.
func ServiceFailure(err error) (uri string, ok bool) {
	var te *ocp.TxError
	if !errors.As(err, &te) || !te.Remote || !te.Result.Failed() {
		return "", false
	}
	p, ok := te.Param(ParamServiceFailure)
	if !ok {
		return "", false
	}
	s, err := ocp.AtomString(p.Value())
	if err != nil {
		return "", false
	}
	return s, true
}
