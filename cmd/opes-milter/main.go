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
  opes-milter run   -config FILE
  opes-milter check -config FILE
  opes-milter try   -config FILE [-from ADDR] [-rcpt ADDR]... [-client IP] [-helo NAME] MESSAGE
`

// run dispatches the subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Dispatch("opes-milter", usage, map[string]cli.Command{
		"run":   func(a []string) error { return cmdRun(ctx, a, stderr) },
		"check": func(a []string) error { return cmdCheck(a, stdout, stderr) },
		"try":   func(a []string) error { return cmdTry(ctx, a, stdout, stderr) },
	}, args, stdout, stderr)
}

// parseFlags parses "-config FILE" plus the extra flags that set registers.
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
		return nil, "", cli.ErrUsage
	}
	return fs, *config, nil
}
