// Package cli is the subcommand dispatch shared by the commands under cmd:
// "NAME COMMAND [flags]", usage text on stdout for help and on stderr for
// mistakes, and exit status 0 (done), 1 (failed) or 2 (bad command line).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ErrUsage marks a command line error whose message has been printed.
var ErrUsage = errors.New("usage")

// Command runs one subcommand with its arguments.
type Command func(args []string) error

// Dispatch runs the subcommand args[0] of the program name and returns
// the exit status: 2 for a missing or unknown command, ErrUsage or a flag
// error; 1, with the error printed, when the command failed.
func Dispatch(name, usage string, commands map[string]Command, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n%s", name, args[0], usage)
		return 2
	}
	switch err := cmd(args[1:]); {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage), errors.Is(err, flag.ErrHelp):
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}
