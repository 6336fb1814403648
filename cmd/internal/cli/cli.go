// Package cli is the subcommand dispatch shared by the commands under cmd:
// "NAME COMMAND [flags] [args]", usage text on stdout for help and on
// stderr for mistakes, "help COMMAND", "version", and exit status 0 (done),
// 1 (failed), 2 (bad command line) or what a command chose (see Exit). The
// same descriptions make the usage text and the manual page (see Man).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ErrUsage marks a command line error whose message has been printed.
var ErrUsage = errors.New("usage")

// Program describes a command with subcommands.
type Program struct {
	Name     string // "opes-milter"
	Section  int    // manual section: 8 for daemons, 1 for tools
	Summary  string // one line: what the program is
	Doc      string // paragraphs (blank line between) for the manual page
	Commands []*Command
	// Exit lists the exit statuses, "0: done" style, for the manual page.
	Exit []string
	// Files lists "path: meaning" lines for the manual page.
	Files []string
}

// Command is one subcommand.
type Command struct {
	Name    string
	Args    string // the positional arguments in the synopsis ("MESSAGE")
	Summary string // one line for the program's usage
	Doc     string // paragraphs for "help COMMAND" and the manual page
	// MinArgs and MaxArgs bound the positional arguments; more or fewer is
	// a usage error (exit 2). MaxArgs < 0 means no upper bound.
	MinArgs, MaxArgs int
	// Flags defines the command's flags on fs and returns the function
	// that runs the command with the positional arguments once fs is
	// parsed.
	Flags func(fs *flag.FlagSet) func(args []string) error
}

// ExitError ends a command with a chosen exit status after printing
// nothing more.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Usagef returns a command line error that Dispatch prints with the
// command's usage, exit status 2.
func Usagef(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

type usageError string

func (e usageError) Error() string { return string(e) }

// lookup finds a command by name.
func (p *Program) lookup(name string) *Command {
	for _, c := range p.Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Usage writes the program's usage: its commands with their summaries.
func (p *Program) Usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags]", p.Name)
	fmt.Fprintf(w, "\n\n%s\n\ncommands:\n", p.Summary)
	width := len("version")
	for _, c := range p.Commands {
		width = max(width, len(c.Name))
	}
	for _, c := range p.Commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, "version", "print the version, VCS revision and Go version")
	fmt.Fprintf(w, "  %-*s  %s\n", width, "help", "help COMMAND prints the flags of a command; help -man the manual page")
	fmt.Fprintf(w, "\nRun \"%s help COMMAND\" for the flags of a command.\n", p.Name)
}

// flagSet returns c's flag set (output discarded: Dispatch prints) and the
// function that runs c.
func (c *Command) flagSet(prog string) (*flag.FlagSet, func([]string) error) {
	fs := flag.NewFlagSet(prog+" "+c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	run := c.Flags(fs)
	return fs, run
}

// synopsis is "NAME COMMAND [flags] ARGS".
func (c *Command) synopsis(prog string, fs *flag.FlagSet) string {
	s := prog + " " + c.Name
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		s += " [flags]"
	}
	if c.Args != "" {
		s += " " + c.Args
	}
	return s
}

// CommandUsage writes the usage of the named command: its synopsis, text
// and flags.
func (p *Program) CommandUsage(w io.Writer, c *Command) {
	fs, _ := c.flagSet(p.Name)
	fmt.Fprintf(w, "usage: %s\n\n%s\n", c.synopsis(p.Name, fs), c.Summary)
	if c.Doc != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Doc))
	}
	if hasFlags(fs) {
		fmt.Fprint(w, "\nflags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// Dispatch runs the subcommand named by args[0] and returns the exit
// status: 0 when done or for help and version, 2 for a missing or unknown
// command, a flag error, a wrong number of arguments or a usage error;
// 1, with the error printed, when the command failed; an ExitError's code.
func (p *Program) Dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		p.Usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		p.Usage(stdout)
		return 0
	case "version", "-version", "--version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "%s version: unexpected argument %q\n", p.Name, args[1])
			return 2
		}
		fmt.Fprintln(stdout, Version(p.Name))
		return 0
	case "help":
		return p.help(args[1:], stdout, stderr)
	}
	c := p.lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "%s: unknown command %q\n", p.Name, args[0])
		p.Usage(stderr)
		return 2
	}
	fs, run := c.flagSet(p.Name)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			p.CommandUsage(stdout, c)
			return 0
		}
		fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, c.Name, err)
		p.CommandUsage(stderr, c)
		return 2
	}
	switch n := fs.NArg(); {
	case n > c.MaxArgs && c.MaxArgs >= 0:
		fmt.Fprintf(stderr, "%s %s: unexpected argument %q\n", p.Name, c.Name, fs.Arg(c.MaxArgs))
		p.CommandUsage(stderr, c)
		return 2
	case n < c.MinArgs:
		fmt.Fprintf(stderr, "%s %s: missing %s\n", p.Name, c.Name, c.Args)
		p.CommandUsage(stderr, c)
		return 2
	}
	err := run(fs.Args())
	var ue usageError
	var ee ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, c.Name, err)
		p.CommandUsage(stderr, c)
		return 2
	case errors.Is(err, ErrUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return 1
	}
}

// help serves "help", "help COMMAND" and "help -man".
func (p *Program) help(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		p.Usage(stdout)
		return 0
	case len(args) > 1:
		fmt.Fprintf(stderr, "%s help: unexpected argument %q\n", p.Name, args[1])
		return 2
	case args[0] == "-man":
		p.Man(stdout)
		return 0
	case args[0] == "version":
		fmt.Fprintf(stdout, "usage: %s version\n\nprint the version, VCS revision and Go version\n", p.Name)
		return 0
	}
	c := p.lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "%s help: unknown command %q\n", p.Name, args[0])
		p.Usage(stderr)
		return 2
	}
	p.CommandUsage(stdout, c)
	return 0
}

// Man writes the program's manual page in roff (man(7) macros), from the
// same descriptions as the usage text.
func (p *Program) Man(w io.Writer) {
	fmt.Fprintf(w, ".TH %s %d \"\" \"%s\" \"opes-milter\"\n", strings.ToUpper(p.Name), p.Section, roff(Version(p.Name)))
	name := roff(p.Name)
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", name, roff(p.Summary))
	fmt.Fprint(w, ".SH SYNOPSIS\n")
	for i, c := range p.Commands {
		if i > 0 {
			fmt.Fprint(w, ".br\n")
		}
		fs, _ := c.flagSet(p.Name)
		fmt.Fprintf(w, ".B %s\n", roff(c.synopsis(p.Name, fs)))
	}
	fmt.Fprintf(w, ".br\n.B %s version\n.br\n.B %s help\n[COMMAND]\n", name, name)
	if p.Doc != "" {
		fmt.Fprint(w, ".SH DESCRIPTION\n")
		paragraphs(w, p.Doc)
	}
	fmt.Fprint(w, ".SH COMMANDS\n")
	for _, c := range p.Commands {
		fs, _ := c.flagSet(p.Name)
		fmt.Fprintf(w, ".SS %s\n%s\n", roff(c.synopsis(p.Name, fs)), roff(c.Summary))
		if c.Doc != "" {
			fmt.Fprint(w, ".PP\n")
			paragraphs(w, c.Doc)
		}
		var flags []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		for _, f := range flags {
			arg, text := flag.UnquoteUsage(f)
			fmt.Fprintf(w, ".TP\n.B \\-%s", roff(f.Name))
			if arg != "" {
				fmt.Fprintf(w, " \" %s\"", roff(arg))
			}
			fmt.Fprintf(w, "\n%s", roff(text))
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				fmt.Fprintf(w, " (default %s)", roff(f.DefValue))
			}
			fmt.Fprint(w, "\n")
		}
	}
	fmt.Fprintf(w, ".SS %s version\nPrint the version, VCS revision and Go version.\n", name)
	fmt.Fprintf(w, ".SS %s help [COMMAND]\nPrint the usage of the program or of a command.\n", name)
	if len(p.Exit) > 0 {
		fmt.Fprint(w, ".SH EXIT STATUS\n")
		for _, e := range p.Exit {
			code, text, _ := strings.Cut(e, ": ")
			fmt.Fprintf(w, ".TP\n.B %s\n%s\n", roff(code), roff(text))
		}
	}
	if len(p.Files) > 0 {
		fmt.Fprint(w, ".SH FILES\n")
		for _, f := range p.Files {
			path, text, _ := strings.Cut(f, ": ")
			fmt.Fprintf(w, ".TP\n.I %s\n%s\n", roff(path), roff(text))
		}
	}
}

// paragraphs writes text as roff paragraphs; lines starting with spaces
// are kept as they are (examples).
func paragraphs(w io.Writer, text string) {
	for i, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if i > 0 {
			fmt.Fprint(w, ".PP\n")
		}
		if strings.HasPrefix(para, " ") {
			fmt.Fprintf(w, ".nf\n%s\n.fi\n", roff(para))
			continue
		}
		fmt.Fprintf(w, "%s\n", roff(strings.Join(strings.Fields(para), " ")))
	}
}

// roff escapes text for roff: backslashes, and a leading dot or quote.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// RawCommand is a subcommand that parses its own flags (see Dispatch).
type RawCommand func(args []string) error

// Dispatch runs the subcommand args[0] of a program whose commands parse
// their own flags, printing usage for "help" and "help COMMAND" (the
// command run with -h) and the version for "version". A command's
// flag.ErrHelp is exit status 0, ErrUsage 2, another error 1.
func Dispatch(name, usage string, commands map[string]RawCommand, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, Version(name))
		return 0
	case "help":
		if len(args) == 1 {
			fmt.Fprint(stdout, usage)
			return 0
		}
		if _, ok := commands[args[1]]; !ok || len(args) > 2 {
			fmt.Fprintf(stderr, "%s: help: unknown command %q\n%s", name, strings.Join(args[1:], " "), usage)
			return 2
		}
		args = []string{args[1], "-h"}
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n%s", name, args[0], usage)
		return 2
	}
	switch err := cmd(args[1:]); {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}
