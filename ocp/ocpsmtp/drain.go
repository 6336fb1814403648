package ocpsmtp

import "github.com/opes-milter/opes-milter/ocp"

// ReasonDraining is the reason text of the profile's "go away" (docs/profile.md
// 3.2): a callout server that is shutting down answers a new TS with
// TE xid {400 "draining"} and ends its idle connections with
// CE {400 "draining"}. The processor starts the refused transaction on another
// server of the set and does not count it as the server's failure.
const ReasonDraining = "draining"

// Draining is the result of the profile's "go away".
var Draining = ocp.Result{Code: ocp.CodeFailure, Reason: ReasonDraining}

// IsDraining reports whether r is the profile's "go away".
func IsDraining(r ocp.Result) bool {
	return r.Code == ocp.CodeFailure && r.Reason == ReasonDraining
}
