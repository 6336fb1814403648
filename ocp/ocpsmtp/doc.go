// Package ocpsmtp is the vocabulary of the OCP/SMTP profiles
// (draft-ietf-opes-smtp-00) as opes-milter implements them: the profile
// URIs, application message parts, the profile feature carried in NO and
// NR, the named parameters of DUM and DUY, and the checks that turn
// untrusted text from a callout server (SMTP replies, header fields,
// OPES-Bypass values) into values an MTA adapter may use.
//
// The rules behind every function are written down in docs/profile.md,
// which also records each decision the draft leaves open. The package
// knows nothing about milter or any MTA and imports only the standard
// library and package ocp (OCP Core, RFC 4037).
//
// Errors come in three types so that callers can pick the OCP reaction
// with errors.As: *NegotiationError (connection scope, answer with CE 400),
// *ParamError (transaction scope, answer with TE 400) and *SyntaxError
// (untrusted text rejected; a ParamError wraps it when the text came in a
// DUM or DUY parameter).
package ocpsmtp
