package mapping

import (
	"fmt"

	"github.com/opes-milter/opes-milter/ocp"
)

// Service is an OPES service ([services.NAME]): the URI sent to the callout
// server in SGC, and its parameters.
type Service struct {
	Name string
	URI  string
	// Params are sent with the service; read only.
	Params map[string]string
}

func (s *Service) name() string { return s.Name }

// Chain is an ordered list of services applied by one callout server set
// ([chains.NAME]).
type Chain struct {
	Name     string
	Services []*Service
	// Group is the service group as SGC sends it: the services' URIs and
	// parameters (sorted by name), in chain order.
	Group     []ocp.Service
	Server    *ServerSet
	OnFailure FailurePolicy
}

func (c *Chain) name() string { return c.Name }

// Action is what opes-milter does with a message when adaptation fails, or
// when it is too large.
type Action int

// The actions. TempFail is the zero value and the default: the MTA answers
// 4xx and the client retries later.
const (
	TempFail       Action = iota
	Accept                // deliver the message unadapted
	Reject                // answer 5xx
	Quarantine            // accept, then hold the message in the MTA's quarantine
	SkipAdaptation        // deliver unadapted and trace it as skipped (oversize only)
)

var actionNames = [...]string{
	TempFail:       "tempfail",
	Accept:         "accept",
	Reject:         "reject",
	Quarantine:     "quarantine",
	SkipAdaptation: "skip",
}

func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "Action(?)"
}

// FailureClass is the kind of callout failure a FailurePolicy
// distinguishes: the one failure vocabulary of the project. The processor
// (package bridge) sorts each failed adaptation into one of these and asks
// the chain's FailurePolicy for the action.
type FailureClass int

// The failure classes of docs/profile.md and the on_failure table.
const (
	// FailConnect: no callout server of the set could be reached, or the
	// OCP handshake or negotiation failed.
	FailConnect FailureClass = iota
	// FailTimeout: a stage deadline passed while waiting for the server.
	FailTimeout
	// FailProtocol: the callout server broke OCP or the profile (a
	// malformed or out-of-order message, an SMTP-Error it was not allowed
	// to send, a 2xx reply ...).
	FailProtocol
	// FailServer: the callout server ended the transaction or connection
	// with a failure result (TE/AME/CE 400 and other non-2xx codes).
	FailServer
	// FailLocal: a local resource failed (the spool, the disk). It has no
	// key of its own in on_failure: the server action applies.
	FailLocal
	// FailService: the callout server ended the transaction because one
	// of its services failed (its scanner is down): a TE 400 with the
	// profile's Service-Failure parameter (docs/profile.md, section 10.1).
	// The server action applies; it is not the callout server's failure
	// and never counts against it (its circuit breaker).
	FailService
)

var failureNames = [...]string{"connect", "timeout", "protocol", "server", "local", "service"}

func (c FailureClass) String() string {
	if c >= 0 && int(c) < len(failureNames) {
		return failureNames[c]
	}
	return fmt.Sprintf("FailureClass(%d)", int(c))
}

// FailurePolicy says what to do with a message per failure class.
type FailurePolicy struct {
	Connect, Timeout, Protocol, Server Action
}

// For returns the action for one failure class.
func (p FailurePolicy) For(c FailureClass) Action {
	switch c {
	case FailConnect:
		return p.Connect
	case FailTimeout:
		return p.Timeout
	case FailProtocol:
		return p.Protocol
	case FailServer, FailLocal, FailService:
		return p.Server
	}
	return TempFail
}
