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
//	opes-callout run   -config FILE   serve the configured listeners
//	opes-callout check -config FILE   validate FILE and build its services
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/opes-milter/opes-milter/cmd/internal/cli"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  opes-callout run   -config FILE
  opes-callout check -config FILE
`

// run dispatches the subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Dispatch("opes-callout", usage, map[string]cli.Command{
		"run":   func(a []string) error { return cmdRun(ctx, a, stderr, nil) },
		"check": func(a []string) error { return cmdCheck(a, stdout, stderr) },
	}, args, stdout, stderr)
}

// parseFlags parses "-config FILE".
func parseFlags(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "configuration `file` (TOML)")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if *config == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "opes-callout %s: -config FILE is required, and nothing else\n%s", name, usage)
		return "", cli.ErrUsage
	}
	return *config, nil
}
