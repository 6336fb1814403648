// Command opes-bench measures what opes-milter costs: a load generator
// that acts as the MTA with go-milter's client, a no-op go-milter filter
// as the baseline, and a runner that measures every case of `make bench`
// on loopback and writes the results into docs/PERFORMANCE.md.
//
// Usage:
//
//	opes-bench run  [flags]     every case, interleaved; writes the report
//	opes-bench load -addr A     drive one running milter and print the figures
//	opes-bench noop -listen A   serve the no-op baseline filter
//
// The cases (see docs/PERFORMANCE.md): (a) the no-op go-milter filter,
// (b) opes-milter + opes-callout with a pass-through chain, (c) the same
// with the `make run` chain, each driven directly by the load generator;
// then a real Postfix fed by smtp-source, alone, with (a) and with (b).
// run needs root for Postfix and the built bin/opes-milter and
// bin/opes-callout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/opes-milter/opes-milter/cmd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage:
  opes-bench run  [-runs N] [-cases LIST] [-sessions N] [-duration D] [-mix MIX] [-doc FILE] ...
  opes-bench load -addr HOST:PORT [-sessions N] [-duration D] [-messages N] [-mix MIX] [-hold]
  opes-bench noop -listen HOST:PORT
Run "opes-bench COMMAND -h" for the flags of a command.
`

// run dispatches the subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Dispatch("opes-bench", usage, map[string]cli.RawCommand{
		"run":  func(a []string) error { return cmdRun(ctx, a, stdout, stderr) },
		"load": func(a []string) error { return cmdLoad(ctx, a, stdout, stderr) },
		"noop": func(a []string) error { return cmdNoop(ctx, a, stderr) },
	}, args, stdout, stderr)
}

// mixFlag is a flag.Value for a Mix.
type mixFlag struct{ m *Mix }

func (f mixFlag) String() string {
	if f.m == nil {
		return ""
	}
	return f.m.String()
}

func (f mixFlag) Set(s string) error {
	m, err := ParseMix(s)
	if err != nil {
		return err
	}
	*f.m = m
	return nil
}

// sizeFlag is a flag.Value for a byte count with a unit.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return ""
	}
	return formatSize(*f.n)
}

func (f sizeFlag) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

// parse parses a command's flags and rejects arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return cli.ErrUsage // the flag package printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "opes-bench %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return cli.ErrUsage
	}
	return nil
}
