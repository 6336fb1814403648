package cli

import (
	"bytes"
	"errors"
	"flag"
	"runtime"
	"strings"
	"testing"
)

func testProgram(got *string) *Program {
	return &Program{
		Name: "p", Section: 8, Summary: "does p things",
		Commands: []*Command{
			{Name: "ok", Summary: "succeeds", Flags: func(fs *flag.FlagSet) func([]string) error {
				x := fs.String("x", "dflt", "an `X`")
				return func(args []string) error { *got = *x + "|" + strings.Join(args, ","); return nil }
			}},
			{Name: "one", Args: "FILE", MinArgs: 1, MaxArgs: 1, Summary: "takes one", Doc: "Takes one FILE.",
				Flags: func(fs *flag.FlagSet) func([]string) error {
					return func(args []string) error { *got = args[0]; return nil }
				}},
			{Name: "fail", Summary: "fails", Flags: func(fs *flag.FlagSet) func([]string) error {
				return func([]string) error { return errors.New("boom") }
			}},
			{Name: "bad", Summary: "usage error", Flags: func(fs *flag.FlagSet) func([]string) error {
				return func([]string) error { return Usagef("no good") }
			}},
			{Name: "exit", Summary: "exit 3", Flags: func(fs *flag.FlagSet) func([]string) error {
				return func([]string) error { return ExitError{3} }
			}},
		},
	}
}

// TestProgramDispatch: -h and --help alike (exit 0, stdout), help COMMAND
// prints that command's usage, extra arguments refused, version.
func TestProgramDispatch(t *testing.T) {
	for _, tt := range []struct {
		args           []string
		code           int
		got            string
		stdout, stderr string // substrings; "" checks the stream is empty
	}{
		{nil, 2, "", "", "usage: p COMMAND"},
		{[]string{"-h"}, 0, "", "usage: p COMMAND", ""},
		{[]string{"--help"}, 0, "", "usage: p COMMAND", ""},
		{[]string{"help"}, 0, "", "commands:\n  ok ", ""},
		{[]string{"help", "one"}, 0, "", "usage: p one FILE\n\ntakes one\n\nTakes one FILE.\n", ""},
		{[]string{"help", "ok"}, 0, "", "usage: p ok [flags]\n\nsucceeds\n\nflags:\n  -x X\n    \tan X (default \"dflt\")\n", ""},
		{[]string{"help", "nope"}, 2, "", "", `unknown command "nope"`},
		{[]string{"help", "ok", "x"}, 2, "", "", `unexpected argument "x"`},
		{[]string{"ok", "-h"}, 0, "", "usage: p ok [flags]", ""},
		{[]string{"ok", "--help"}, 0, "", "usage: p ok [flags]", ""},
		{[]string{"ok", "-help"}, 0, "", "usage: p ok [flags]", ""},
		{[]string{"ok"}, 0, "dflt|", "", ""},
		{[]string{"ok", "-x", "y"}, 0, "y|", "", ""},
		{[]string{"ok", "extra"}, 2, "", "", "p ok: unexpected argument \"extra\"\nusage: p ok"},
		{[]string{"ok", "-y"}, 2, "", "", "p ok: flag provided but not defined: -y\nusage: p ok"},
		{[]string{"one"}, 2, "", "", "p one: missing FILE"},
		{[]string{"one", "a", "b"}, 2, "", "", `unexpected argument "b"`},
		{[]string{"one", "a"}, 0, "a", "", ""},
		{[]string{"nope"}, 2, "", "", "p: unknown command \"nope\"\nusage: p COMMAND"},
		{[]string{"fail"}, 1, "", "", "p: boom\n"},
		{[]string{"bad"}, 2, "", "", "p bad: no good\nusage: p bad"},
		{[]string{"exit"}, 3, "", "", ""},
		{[]string{"version"}, 0, "", "p ", ""},
		{[]string{"--version"}, 0, "", runtime.Version(), ""},
		{[]string{"version", "x"}, 2, "", "", "unexpected argument"},
	} {
		var got string
		var out, errb bytes.Buffer
		code := testProgram(&got).Dispatch(tt.args, &out, &errb)
		ok := code == tt.code && got == tt.got
		for _, c := range []struct{ have, want string }{{out.String(), tt.stdout}, {errb.String(), tt.stderr}} {
			if c.want == "" && c.have != "" || !strings.Contains(c.have, c.want) {
				ok = false
			}
		}
		if !ok {
			t.Errorf("%q: %d %q\nstdout %q\nstderr %q\nwant %d %q %q %q", tt.args, code, got, out.String(), errb.String(), tt.code, tt.got, tt.stdout, tt.stderr)
		}
	}
}

// TestMan: the manual page comes from the same text, escaped for roff.
func TestMan(t *testing.T) {
	var got string
	var out bytes.Buffer
	if code := testProgram(&got).Dispatch([]string{"help", "-man"}, &out, &out); code != 0 {
		t.Fatal(code)
	}
	for _, want := range []string{".TH P 8 ", ".SH NAME\np \\- does p things\n", ".SS p one FILE\ntakes one\n.PP\nTakes one FILE.\n", ".TP\n.B \\-x \" X\"\nan X (default dflt)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("man page lacks %q:\n%s", want, out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	v := Version("p")
	if !strings.HasPrefix(v, "p ") || !strings.HasSuffix(v, runtime.Version()) {
		t.Errorf("Version = %q", v)
	}
}

func TestDispatch(t *testing.T) {
	cmds := map[string]RawCommand{
		"ok":    func(args []string) error { return nil },
		"fail":  func(args []string) error { return errors.New("boom") },
		"usage": func(args []string) error { return ErrUsage },
		"hh": func(args []string) error {
			if len(args) == 1 && args[0] == "-h" {
				return flag.ErrHelp
			}
			return errors.New("args " + strings.Join(args, " "))
		},
		"args": func(args []string) error {
			if strings.Join(args, " ") != "-x y" {
				return errors.New("args " + strings.Join(args, " "))
			}
			return nil
		},
	}
	for _, tt := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{nil, 2, "", "U\n"},
		{[]string{"-h"}, 0, "U\n", ""},
		{[]string{"nope"}, 2, "", "p: unknown command \"nope\"\nU\n"},
		{[]string{"ok"}, 0, "", ""},
		{[]string{"fail"}, 1, "", "p: boom\n"},
		{[]string{"usage"}, 2, "", ""},
		{[]string{"hh", "-h"}, 0, "", ""},
		{[]string{"help", "hh"}, 0, "", ""},
		{[]string{"args", "-x", "y"}, 0, "", ""},
	} {
		var out, errb bytes.Buffer
		if code := Dispatch("p", "U\n", cmds, tt.args, &out, &errb); code != tt.code || out.String() != tt.stdout || errb.String() != tt.stderr {
			t.Errorf("%q: %d %q %q, want %d %q %q", tt.args, code, out.String(), errb.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}
