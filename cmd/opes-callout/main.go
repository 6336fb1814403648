// Command opes-callout is an OCP callout server for mail: OPES processors
// such as opes-milter connect to it, create service groups naming its
// services, and send each SMTP transaction for adaptation under the
// OCP/SMTP profile. The services are the built-in ones of package callout
// (recipient-policy, sender-rewrite, header-tag, subject-tag, disclaimer,
// attachment-filter, command, size-limit), configured in the [callout]
// table of the configuration file (see contrib/opes-milter.toml).
//
// Usage:
//
//	opes-callout run   [-config FILE]   serve the configured listeners
//	opes-callout check [-config FILE]   validate FILE and build its services
//	opes-callout version                print the version
//	opes-callout help [COMMAND]         print the usage (help -man: the manual page)
//
// FILE defaults to /etc/opes-milter/opes-milter.toml.
package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/opes-milter/opes-milter/cmd/internal/cli"
	"github.com/opes-milter/opes-milter/cmd/internal/procs"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// program describes opes-callout's commands.
func program(ctx context.Context, stdout, stderr io.Writer) *cli.Program {
	var config string
	configFlag := func(fs *flag.FlagSet) {
		fs.StringVar(&config, "config", cli.DefaultConfig, "configuration `file` (TOML) with a [callout] table")
	}
	return &cli.Program{
		Name:    "opes-callout",
		Section: 8,
		Summary: "OCP callout server with built-in mail services for opes-milter",
		Doc: `opes-callout is an OCP (RFC 4037) callout server: OPES processors such as opes-milter
connect to it, create service groups naming its services and send each SMTP transaction
for adaptation under the OCP/SMTP profile. Its services (recipient-policy, sender-rewrite,
header-tag, subject-tag, disclaimer, attachment-filter, command, size-limit, spamd, rspamd,
auth-verify, dkim-sign, clamd, icap) are configured in the [callout] table of the same
configuration file as opes-milter.`,
		Commands: []*cli.Command{
			{
				Name:    "run",
				Summary: "serve the configured listeners (SIGHUP reloads the services, SIGTERM stops)",
				Flags: func(fs *flag.FlagSet) func([]string) error {
					configFlag(fs)
					return func([]string) error { return cmdRun(ctx, config, stderr, procs.Set, nil) }
				},
			},
			{
				Name:    "check",
				Summary: "validate the configuration file, build its services and list them",
				Flags: func(fs *flag.FlagSet) func([]string) error {
					configFlag(fs)
					return func([]string) error { return cmdCheck(config, stdout) }
				},
			},
		},
		Exit:  []string{"0: done", "1: failed (the error is printed)", "2: bad command line"},
		Files: []string{cli.DefaultConfig + ": the configuration file read without -config"},
	}
}

// run dispatches the subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program(ctx, stdout, stderr).Dispatch(args, stdout, stderr)
}
