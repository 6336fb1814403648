// Package e2e runs opes-milter against real peers: Postfix, Sendmail, miltertest,
// smtp-sink, swaks and SpamAssassin's spamd.
//
// The non-test files of this package are a harness that the end-to-end tests share.
// Every peer is started as a child process on a free loopback port inside its own
// temporary directory. A test's cleanup stops the peer, kills any process still
// working inside that directory and removes it, so a test leaves no process, port or
// directory behind even when it fails. When a peer does not come up, the test fails
// and prints the peer's own log.
//
// The MTA configurations are generated from the snippets that administrators read:
// contrib/postfix/main.cf, contrib/postfix/master.cf and contrib/sendmail/sendmail.mc.
// The harness fills in their @PLACEHOLDERS@ (ports, paths, milter socket) and adds only
// what a throwaway test instance needs (queue directory, relay to smtp-sink, no DNS).
//
// The peers are Debian packages installed by .ci/install-peers.sh; Sendmail is unpacked
// into /opt/opes-milter-peers/sendmail because its package conflicts with Postfix. A
// missing peer fails the test with a message naming that script; tests never skip.
//
// Loads come from Postfix's own smtp-source (smtpsource.go), counted from its output
// and cross-checked by a tap that matches each accepted message's queue id with its
// delivered copy; the tests that need one id per message with content of their own
// (the soak mix, the fault, overload, TLS and operations tests) use the harness's SMTP client
// (load.go), whose bookkeeping is per message id.
//
// The harness needs root (Postfix, smtp-sink -u, and the namespaces Sendmail runs in),
// listens only on 127.0.0.1, and expects to run with go test -p 1 ./e2e/ so that the
// MTAs of different test binaries do not compete for the two cores.
package e2e
