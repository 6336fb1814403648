package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	cmds := map[string]Command{
		"ok":    func(args []string) error { return nil },
		"fail":  func(args []string) error { return errors.New("boom") },
		"usage": func(args []string) error { return ErrUsage },
		"help":  func(args []string) error { return flag.ErrHelp },
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
		{[]string{"args", "-x", "y"}, 0, "", ""},
	} {
		var out, errb bytes.Buffer
		if code := Dispatch("p", "U\n", cmds, tt.args, &out, &errb); code != tt.code || out.String() != tt.stdout || errb.String() != tt.stderr {
			t.Errorf("%q: %d %q %q, want %d %q %q", tt.args, code, out.String(), errb.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}
