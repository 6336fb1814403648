// Package ocp implements OCP Core, the OPES Callout Protocol of RFC 4037,
// in both roles: the OPES processor (Client, Tx) and the callout server
// (Server, ServerTx), over TCP with optional TLS started before CS. It
// uses the standard library only and knows nothing about mail; the OCP/SMTP
// profile lives in package ocp/ocpsmtp.
//
// # Codec
//
// Decoder, AppendMessage and Encoder implement the message grammar of
// RFC 4037 §3.1 and never touch the network. Values are Atom, List and
// Struct; a Message has a name, anonymous and named parameters and an
// optional payload. The encoder is canonical: atoms are bare exactly when
// they are non-empty safe-OCTETs. Decoding is bounded by Limits, checked
// before allocation. A typical DUM costs two allocations; decoded atoms
// may be shared between messages of one Decoder and are read-only.
//
// # RFC 4037 sections implemented
//
//   - §2.1-2.3, §11.1-11.2: CS first, exactly once; repeated CS ignored; CE
//     with a result before closing; a transport close counts as CE 400.
//   - §2.7: timeouts. Handshake and negotiations are bounded
//     (ClientConfig.HandshakeTimeout), idle transactions get PQ then TE 400
//     (ClientConfig.TxIdleTimeout), idle server connections CE
//     (Server.IdleTimeout), writes are bounded.
//   - §3.1: the grammar, sizes up to 2147483647 without leading zeros,
//     quoted atoms, no implied whitespace.
//   - §5: invalid input. Transaction scope ends the transaction with
//     TE 400, connection scope and syntax errors end the connection with
//     CE 400; valid but unknown messages, parameters and members are
//     ignored.
//   - §6, §6.1, §11.18-11.19: negotiation (NO/NR) with SG scope and the
//     SG echo rule, Offer-Pending, offer collisions (the processor wins),
//     negotiation phases: only NO, NR, AQ, AA, PQ, PA, PR and CE are sent
//     during one.
//   - §7, §11.9-11.11: data preservation. Kept on DUM is tracked by both
//     roles; DUY outside it is refused (server) or ends the transaction
//     (processor); DPI may only shrink the reusable area.
//   - §8, §11.12-11.14: premature termination. DWSR and DWSS are handed
//     to the application; DSS makes the server end its adapted message
//     with AME 206 at once; AME 206 on the adapted flow without DSS ends
//     the transaction; DSS is sent before a premature AME after DWSS and
//     DWSR (§8.3).
//   - §10: the Core types: uni, size, offset (Uint), boolean (Bool),
//     result (Result), feature(s) (Feature), service(s) (Service), and the
//     unique, increasing xids and sg-ids of one connection.
//   - §11.3-11.17: SGC, SGD, TS, TE, AMS, AME, DUM (payload required,
//     offsets without gaps across DUM and DUY), DWP/DPM/DWM flow control.
//   - §11.20-11.23: PQ answered with PA (xid while the transaction is
//     open, Org-Data while the original flow is active, even for unknown
//     xids), PR accepted, AQ answered with AA.
//   - §13: identifiers are checked against the connection; resources are
//     bounded (Limits, queued data per transaction).
//
// # Deliberate deviations and choices
//
// Where RFC 4037 is silent, inconsistent or its examples contradict it:
//
//   - A named parameter may carry several space-separated values, because
//     RFC 4037 declares Kept with two although its grammar allows one.
//   - Decoder.AllowBareStar accepts an unquoted "*" as a list item for the
//     OCP/SMTP draft's Header-List; the encoder always quotes it.
//   - A message for an xid the connection never created ends the
//     connection (CE 400); one for an xid that already ended is dropped,
//     since RFC 4037 forbids answering it with TE.
//   - The processor offers nothing at connection scope (NO ()) and
//     negotiates profiles per service group. It accepts no feature offered
//     by the server: it answers NR without a feature and lists the offered
//     features it knows (ClientConfig.Known, or offered itself) under
//     Rejects, the others under Unknowns (RFC 4037 §11.19). It answers AQ
//     with true for features it offered on the connection; the server for
//     features negotiated on it.
//   - Ending is explicit about its result: Client.Close(ctx, res) sends
//     CE with res (Failure for an error, RFC 4037 §5: a bare CE reads as
//     200), Tx.End and ServerTx.End send TE with theirs; none of them
//     blocks beyond ctx.
//   - The processor answers every server NO as soon as it reads it, so two
//     server offers in a row are not a violation from its point of view.
//   - During the processor's first negotiation phase any other message
//     ends the connection; during later phases (a service group's NO) data
//     of running transactions is tolerated, since the server may have sent
//     it before it saw the NO. Outgoing messages produced during a phase
//     are held back and sent, in order, when the phase ends.
//   - The server tolerates SGC before the processor's first NO (RFC 4236
//     examples do that).
//   - An NR selecting a feature that was not offered ends the connection.
//   - A TE or AME with a result other than 200 and 206 counts as a
//     failure; a failing TE purges the messages not yet read, and Recv
//     returns a *TxError.
//   - The kept range is the union of all Kept announcements; it lasts until
//     the transaction ends or a DPI shrinks the reusable area (the RFC's
//     "AME ends preservation commitments" is ambiguous about which AME).
//   - A transaction whose application leaves more than 4 MiB of data
//     unread sends DWP to its peer and DWM when drained. Past 16 MiB
//     (what the peer sent before it saw the DWP, or a peer that ignores
//     it) the connection stops reading until the application has read
//     down to 4 MiB, so that TCP holds the rest back; an application
//     that has not read down to 4 MiB within 30 s ends its transaction
//     with TE 400.
//   - When a Handler returns without ending its transaction, the server
//     sends TE (400 if its adapted message is still open).
//   - Size-request in DWM is sent when asked for and ignored on receipt.
//   - Service groups created by the server (SGC from the server) are
//     accepted and never used by the processor.
package ocp
