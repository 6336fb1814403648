// Package callout is the Go API for OPES mail services and the callout
// server that runs them: the server role of package ocp (OCP Core, RFC
// 4037) plus the OCP/SMTP profile layer (draft-ietf-opes-smtp-00 as
// docs/profile.md pins it down).
//
// # Services
//
// A Service declares the parts it adapts and the parts it only reads
// (Needs), and implements one or more of MailAdapter, RcptAdapter and
// MessageAdapter. It receives typed parts: the connection facts and the
// envelope in a Tx, MAIL and RCPT as an Address, and the mail data as a
// Message, whose MIME structure (Section, with byte offsets) is parsed on
// demand and whose parts read through go-message (Section.Entity) or as
// raw streams (Section.Body, Message.NewReader). It answers with a
// Decision: keep, replace, refuse with an SMTP reply, add header fields,
// advice. The layer encodes decisions per the profile: DUY for kept data
// the processor preserved (or an echo), a DUM with new content, a DUM with
// SMTP-Error, Add-Header on the answer and on annotation DUMs.
//
// The parts a chain needs are negotiated as such (Chain.Needs merges the
// services' needs with ocpsmtp.Merge): a chain that needs only the header
// gets ALLHEADERS or SINGLEHEADERS, and no body crosses the connection;
// MessageAdapter services then see a Message built from what was
// negotiated, and the layer answers each part as that part
// (docs/profile.md 6.1). The server's AMS names the services that act on
// the transaction when not all of the group's can (docs/profile.md 12).
//
// A Chain applies the services of one service group in SGC order, each on
// the previous one's output. Messages are spooled (memory, then an
// unlinked temporary file) and never rebuilt: services change them with
// Message.Splice, so every byte they do not edit stays as it was.
//
// # Built-in services
//
// The services opes-callout ships live in package callout/builtin, which
// builds them from the [callout] configuration of package mapping. A third
// party writes a service with this package alone. Charset and transfer
// encoding conversions are in callout/mimetext.
//
// # Server
//
// Server accepts OCP connections (TCP or TLS), negotiates each service
// group's profile from its chain (Negotiate), runs transactions, and
// reports to an Observer (callout/promobserver: Prometheus) and a
// *slog.Logger. Package callout does not depend on a metrics library.
package callout
