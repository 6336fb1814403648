// Package bridge is the OPES processor of opes-milter: it turns the events
// of an MTA session into OCP transactions (RFC 4037, the OCP/SMTP profile
// of docs/profile.md) with the callout servers of the configuration, and
// their answers into the MTA's replies and end-of-message modifications.
//
// # Contract with the MTA adapter
//
// session.go is the whole interface to the MTA: a Handler (*Bridge)
// creates one Session per MTA connection, the adapter calls its methods in
// MTA order and maps the returned Reply (a milter verdict carrying an
// ocpsmtp.Reply) and the Modifier calls to its wire protocol. Package
// milter is that adapter for Postfix and Sendmail; nothing here knows the
// milter protocol, and bridge imports neither milter nor go-milter (the
// tests drive a Session in process, as opes-milter try does).
//
// # Inside
//
//   - Bridge (bridge.go) holds the current Policy and its connection pool;
//     Reload swaps both.
//   - Policy (route.go) is what the bridge runs with; PolicyFromConfig
//     (config.go) fills it from the compiled configuration of package
//     mapping, whose types the bridge uses as they are, without copies:
//     mapping.Route (its Offer), mapping.Chain (its service Group and
//     FailurePolicy), mapping.ServerSet (its ClientConfig), mapping.Facts,
//     mapping.Timeouts, mapping.Action, mapping.FailureClass, and
//     ocpsmtp.Part.
//   - The session (mailsession.go: the MTA events; flow.go and data.go:
//     its OCP side before and during the data; retry.go) follows one SMTP
//     connection and its mail transactions: route selection, deferred
//     refusals, the data parts it queues (pending.go) and spools
//     (spool.go, internal/spool).
//   - The exchange (exchange*.go) is the OCP side of one mail transaction:
//     it sends the original parts, a receiver goroutine takes the callout
//     server's answers as they come. It owns its lock: the session and the
//     outcome reach it only through its methods (exchange_flow.go,
//     exchange_answers.go). outcome.go and data_outcome.go validate the
//     answers and apply them at end of message (validate.go, headers.go,
//     sections.go, trace.go for OPES-System and OPES-Via).
//   - The pool (pool.go) keeps the OCP connections per server set, one
//     service group per chain, with failover and a circuit breaker.
//   - errors.go sorts every failure into a mapping.FailureClass; the
//     chain's on_failure policy decides the message's fate in one place,
//     decideFailure (failure.go).
//   - metrics.go has the Prometheus collectors (opes_milter_*).
//
// docs/design.md maps which package owns which idea and the import rules
// internal/layering enforces.
package bridge
