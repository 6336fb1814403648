// Command opes-milter is the OPES processor: a milter that Postfix or
// Sendmail connects to, turning each SMTP transaction into OCP transactions
// for the configured callout servers and their answers into milter actions.
//
// Usage:
//
//	opes-milter run   [-config FILE]    serve the configured milter sockets
//	opes-milter check [-config FILE]    validate FILE and print the compiled routes
//	opes-milter try   [-config FILE] [-from A] [-rcpt B]... MESSAGE
//	                                    run one message through the callout servers
//	                                    and print the milter actions that would result
//	opes-milter version                 print the version
//	opes-milter help [COMMAND]          print the usage (help -man: the manual page)
//
// FILE defaults to /etc/opes-milter/opes-milter.toml.
package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/opes-milter/opes-milter/cmd/internal/cli"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// program describes opes-milter's commands; ctx, stdout and stderr are
// what the commands run with.
func program(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) *cli.Program {
	var config string
	configFlag := func(fs *flag.FlagSet) {
		fs.StringVar(&config, "config", cli.DefaultConfig, "configuration `file` (TOML)")
	}
	return &cli.Program{
		Name:    "opes-milter",
		Section: 8,
		Summary: "OPES processor for Postfix and Sendmail: a milter that sends mail to OCP callout servers",
		Doc: `opes-milter is a milter (Postfix smtpd_milters, Sendmail INPUT_MAIL_FILTER) that turns
each SMTP transaction into OCP (RFC 4037) transactions for the callout servers of the
configuration file, and their answers into milter actions: reject or tempfail a recipient
or the message, change headers, replace the body.

The configuration file is TOML; contrib/opes-milter.toml in the source tree is a commented
example. Errors name file:line:key.`,
		Commands: []*cli.Command{
			{
				Name:    "run",
				Summary: "serve the configured milter sockets (SIGHUP reloads, SIGTERM stops)",
				Doc: `Serves the milter sockets of [milter] listen until SIGINT or SIGTERM; in-flight
sessions get 30 seconds. SIGHUP loads the file again; an invalid file keeps the
running configuration and logs why. With [milter] metrics_listen, /metrics,
/healthz, /livez and /readyz are served there.

With -local the [callout] services of the same file run inside opes-milter, as
opes-callout would run them, and every chain uses them instead of its server set:
one daemon instead of two when the services run on the MTA's host. OCP still
carries every transaction, over a loopback connection inside the process.
[callout] listen, metrics_listen and TLS are not used (its metrics join
opes-milter's); SIGHUP reloads the services too. Run opes-callout on its own to
share the services among several MTAs or to keep a failing service out of the
milter's process.`,
				Flags: func(fs *flag.FlagSet) func([]string) error {
					configFlag(fs)
					local := fs.Bool("local", false, "run the [callout] services of the same file in process instead of the configured callout servers")
					return func([]string) error { return cmdRun(ctx, config, *local, stderr) }
				},
			},
			{
				Name:    "check",
				Summary: "validate the configuration file and print the compiled routes",
				Doc: `Refuses exactly what run refuses, naming file:line:key; exit status 1 then.
When the file also has a [callout] table, both sides are compared: every service a
chain names must be offered by a [callout.services] table with the same URI, and each
route must offer the parts its services need.

With -probe, check then connects to every callout server of every server set, negotiates
each chain's service group there as run would, and prints per server and chain what was
accepted (the profile and parts) or refused and why (unreachable, or the services the
server refused); a failed negotiation is exit status 1.`,
				Flags: func(fs *flag.FlagSet) func([]string) error {
					configFlag(fs)
					probe := fs.Bool("probe", false, "also negotiate every chain's service group with every callout server")
					return func([]string) error { return cmdCheck(ctx, config, *probe, stdout) }
				},
			},
			{
				Name:    "try",
				Args:    "MESSAGE",
				MinArgs: 1, MaxArgs: 1,
				Summary: "run one message (a file, - for stdin) through the callout servers and print the milter actions",
				Doc:     tryDoc,
				Flags: func(fs *flag.FlagSet) func([]string) error {
					configFlag(fs)
					o := tryFlags(fs)
					o.stdin = stdin
					return func(args []string) error {
						o.config, o.message = config, args[0]
						return cmdTry(ctx, o, stdout, stderr)
					}
				},
			},
		},
		Exit: []string{
			"0: done; for try: the message was accepted",
			"1: failed (the error is printed)",
			"2: bad command line",
			"3: try: the message was rejected (5xx), or every recipient",
			"4: try: the message was tempfailed (4xx)",
			"5: try: the message was discarded",
		},
		Files: []string{cli.DefaultConfig + ": the configuration file read without -config"},
	}
}

// run dispatches the subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runStdin(ctx, args, os.Stdin, stdout, stderr)
}

// runStdin is run reading standard input from stdin.
func runStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return program(ctx, stdin, stdout, stderr).Dispatch(args, stdout, stderr)
}
