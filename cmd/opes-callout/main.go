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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a command line error; the usage text has been printed.
var errUsage = errors.New("usage")

const usage = `usage:
  opes-callout run   -config FILE
  opes-callout check -config FILE
`

// run dispatches the subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stderr, nil)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "opes-callout: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	default:
		fmt.Fprintf(stderr, "opes-callout: %v\n", err)
		return 1
	}
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
		return "", errUsage
	}
	return *config, nil
}
