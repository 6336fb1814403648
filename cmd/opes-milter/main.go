// Command opes-milter is the OPES processor: a milter that Postfix or
// Sendmail connects to, turning each SMTP transaction into OCP transactions
// for the configured callout servers and their answers into milter actions.
//
// Usage:
//
//	opes-milter run   -config FILE      serve the configured milter sockets
//	opes-milter check -config FILE      validate FILE and print the compiled routes
//	opes-milter try   -config FILE [-from A] [-rcpt B]... message.eml
//	                                    run one message through the callout servers
//	                                    and print the milter actions that would result
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
  opes-milter run   -config FILE
  opes-milter check -config FILE
  opes-milter try   -config FILE [-from ADDR] [-rcpt ADDR]... [-client IP] [-helo NAME] MESSAGE
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
		err = cmdRun(ctx, args[1:], stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "try":
		err = cmdTry(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "opes-milter: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	default:
		fmt.Fprintf(stderr, "opes-milter: %v\n", err)
		return 1
	}
}

// configFlag parses "-config FILE" plus the extra flags that set registers.
func parseFlags(name string, args []string, stderr io.Writer, set func(*flag.FlagSet)) (*flag.FlagSet, string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "configuration `file` (TOML)")
	if set != nil {
		set(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, "", err
	}
	if *config == "" {
		fmt.Fprintf(stderr, "opes-milter %s: -config is required\n%s", name, usage)
		return nil, "", errUsage
	}
	return fs, *config, nil
}
