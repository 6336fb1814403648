// Package milter is the MTA adapter of opes-milter: it serves the milter
// protocol (version 6, as Postfix and Sendmail speak it) over
// github.com/d--j/go-milter and drives one bridge.Session per MTA
// connection. It is the only package that imports go-milter.
//
// # Negotiation
//
// The server asks only for what bridge.Requirements lists: unwanted
// events are switched off (SMFIP_NO*, and their replies with SMFIP_NR_*),
// the actions follow Requirements.Actions, and macros are requested per
// stage with SETSYMLIST (the bridge's plus a base set: "v", "j",
// "{daemon_name}", "{client_addr}", "{client_name}", TLS, "{auth_authen}"
// and "i"; "v" tells Postfix from Sendmail). CONNECT is always negotiated
// so a session the bridge refuses (Handler.NewSession error) is answered
// 451 4.3.2. SMFIP_SKIP and SMFIP_HDR_LEADSPC are asked for. An MTA
// offering less is not refused but degraded: dropped bits are logged,
// missing actions make the Modifier return ErrNotNegotiated, a missing
// HDR_LEADSPC is compensated by one space each way, a missing SKIP or
// SMFIP_NO* costs round trips only. The replies of
// Requirements.Replies that Handler.Replies does not need at the moment a
// connection is negotiated are negotiated away for that connection
// (SMFIP_NR_*), and its session is told which replies the MTA waits for.
//
// # Replies
//
// Reject and TempFail with a code or text become SMFIR_REPLYCODE after
// validation (class of code and enhanced code, CRLF-only line breaks, at
// most 32 lines); an invalid one falls back to the MTA's default text and
// is logged. Accept and Discard are honoured only at end of message; Skip
// becomes Continue where SKIP is not legal or not negotiated. Callbacks
// never return errors to go-milter, which would close the connection and
// make Postfix apply milter_default_action to the rest of the session.
//
// # Hardening against go-milter v0.10.1
//
// The library has these defects, all reachable by whoever can connect to
// the socket; this package works around each:
//
//   - wire.ReadPacket panics on a zero-length packet (slice [1:0]) and
//     processMsg panics on a CONNECT without NUL after the host name, or
//     without the family byte, and on MAIL/RCPT without NUL; the panic is
//     in the library's goroutine, so it kills the daemon.
//   - ReadPacket allocates whatever length a packet announces, up to
//     512 MiB, before reading it.
//   - Each packet is read with several unbuffered reads and written with
//     two write calls (header, then data).
//   - No callback is run under recover().
//   - Serve returns on any accept error, even a transient one such as
//     EMFILE, and returns nil (not ErrServerClosed) on shutdown; Close does
//     not wait for session goroutines.
//   - Warnings go to a package-level hook (LogWarning, log.Printf by
//     default); SetLibraryLogger routes them to slog.
//   - FormatResponse does not check that the enhanced status code has the
//     reply code's class ("554 4.7.1" is sent, Postfix rejects it).
//
// The package puts a framing connection under go-milter (framing.go): it
// reads through a buffer, hands out one frame at a time after checking its
// length (not 0, at most Options.MaxPacket) and the NULs its command
// requires, and writes each outgoing frame with one write call. A bad
// frame ends that connection with a logged *FrameError; the daemon goes
// on. Every callback recovers panics and answers tempfail. Replies are
// validated before go-milter formats them (reply.go).
package milter
