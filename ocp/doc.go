// Package ocp implements OCP Core, the OPES Callout Protocol of RFC 4037,
// in both roles: the OPES processor (Client, Tx) and the callout server
// (Server, ServerTx), over TCP with optional TLS started before CS.
//
// The codec (Decoder, AppendMessage, Encoder) implements the message
// grammar of RFC 4037 §3.1 and knows nothing about connections. Values are
// Atom, List and Struct; Message carries a name, anonymous and named
// parameters and an optional payload. Typed helpers parse the Core types
// of §10: Uint, Bool, AtomString, Result, Feature, Service.
//
// The protocol engine follows RFC 4037 §2 and §5-§11: CS/CE, negotiation
// (NO/NR, Offer-Pending, SG scope, negotiation phases), service groups
// (SGC/SGD), transactions (TS/TE), application messages (AMS/AME),
// data (DUM, DUY with Kept, DPI), flow control (DWP/DPM/DWM), premature
// termination (DWSS/DWSR/DSS), progress and ability queries (PQ/PA/PR,
// AQ/AA). Invalid input is handled as §5 asks: transaction scope ends the
// transaction with TE 400, connection scope (and any syntax error) ends
// the connection with CE 400.
//
// Deliberate deviations and choices where RFC 4037 is silent or
// inconsistent:
//
//   - A named parameter may carry several space-separated values, because
//     RFC 4037 declares Kept with two although its grammar allows one.
//   - Decoder.AllowBareStar accepts an unquoted "*" as a list item for the
//     OCP/SMTP draft's Header-List; the encoder always quotes it.
//   - A message for an xid the connection never created ends the
//     connection (CE 400); one for an xid that already ended is dropped,
//     since RFC 4037 forbids answering it with TE.
//   - The processor never accepts a feature offered by the server: it
//     answers NR without a feature and lists the offer under Unknowns.
//   - After its own connection-scope offer the processor treats any
//     non-negotiation message before the phase ends as a violation
//     (CE 400); during later phases (a service group's NO) it tolerates
//     data for running transactions the server sent before it saw the NO.
//   - Outgoing non-negotiation messages produced during a negotiation
//     phase are held back and sent, in order, when the phase ends.
//   - An NR selecting a feature that was not offered ends the connection.
//   - Data preservation: the kept range is the union of all Kept
//     announcements; it lasts until the transaction ends or a DPI shrinks
//     the reusable area.
package ocp
