package builtin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestCommand(t *testing.T) {
	sh := func(script string) []string { return []string{"/bin/sh", "-c", script} }
	tests := []struct {
		name   string
		opts   mapping.Command
		action callout.Action
		check  func(t *testing.T, d callout.Decision)
	}{
		{name: "exit 0 passes", opts: mapping.Command{Argv: sh("cat >/dev/null"), ExitCodes: map[int]string{0: CommandPass}},
			action: callout.ActionKeep},
		{name: "mapped status rejects with the program's words",
			opts: mapping.Command{Argv: sh(`cat >/dev/null; echo "stream: Eicar-Test-Signature FOUND"; exit 1`),
				ExitCodes: map[int]string{0: CommandPass, 1: CommandReject},
				Reply:     ocpsmtp.Reply{Code: 550, Text: "5.7.1 Virus found: {output}"}},
			action: callout.ActionRefuse,
			check: func(t *testing.T, d callout.Decision) {
				if got := d.Reply.String(); got != "550 5.7.1 Virus found: stream: Eicar-Test-Signature FOUND" {
					t.Errorf("reply %q", got)
				}
			}},
		{name: "unmapped status and no default fails closed", opts: mapping.Command{Argv: sh("exit 7"), ExitCodes: map[int]string{0: CommandPass}},
			action: callout.ActionRefuse, check: wantTempFail},
		{name: "default applies", opts: mapping.Command{Argv: sh("cat >/dev/null; exit 7"), Default: CommandPass},
			action: callout.ActionKeep},
		{name: "replace with output, LF made CRLF",
			opts:   mapping.Command{Argv: sh(`printf 'Subject: new\n\nreplaced body\n'`), ExitCodes: map[int]string{0: CommandReplace}},
			action: callout.ActionReplace,
			check: func(t *testing.T, d callout.Decision) {
				if got := string(all(t, d.Message)); got != "Subject: new\r\n\r\nreplaced body\r\n" {
					t.Errorf("message %q", got)
				}
			}},
		{name: "headers the program added, with the environment",
			opts: mapping.Command{Argv: sh(`printf 'X-Scan: %s %s\r\n\tfolded\r\n' "$OPES_CLIENT_IP" "$OPES_SENDER"; cat`),
				ExitCodes: map[int]string{0: CommandHeaders}},
			action: callout.ActionKeep,
			check: func(t *testing.T, d callout.Decision) {
				if len(d.Headers) != 1 || d.Headers[0].String() != "X-Scan: 192.0.2.1 alice@example.org\r\n\tfolded" {
					t.Errorf("headers %q", d.Headers)
				}
			}},
		{name: "timeout fails closed and kills the process group",
			opts:   mapping.Command{Argv: sh("sleep 30 & sleep 30; wait"), Timeout: 200 * time.Millisecond, Default: CommandPass},
			action: callout.ActionRefuse, check: wantTempFail},
		{name: "missing program fails closed", opts: mapping.Command{Argv: []string{"/nonexistent/scanner"}, Default: CommandPass},
			action: callout.ActionRefuse, check: wantTempFail},
		{name: "killed by a signal fails closed", opts: mapping.Command{Argv: sh("kill -9 $$"), Default: CommandPass},
			action: callout.ActionRefuse, check: wantTempFail},
		{name: "too much output fails closed", opts: mapping.Command{Argv: sh("cat >/dev/null; yes"), MaxOutput: 1000, Default: CommandPass},
			action: callout.ActionRefuse, check: wantTempFail},
		{name: "empty output cannot replace", opts: mapping.Command{Argv: sh("cat >/dev/null"), ExitCodes: map[int]string{0: CommandReplace}},
			action: callout.ActionRefuse, check: wantTempFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			c, err := NewCommand(&opts)
			if err != nil {
				t.Fatal(err)
			}
			tx := &callout.Tx{Client: callout.Client{IP: "192.0.2.1"}, Sender: callout.Address{Addr: "alice@example.org"}}
			start := time.Now()
			d, err := c.AdaptMessage(context.Background(), tx, sample(t, "plain.eml"))
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if d.Action != tt.action {
				t.Fatalf("action %v (%s), want %v", d.Action, d.Reason, tt.action)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
			if d.Message != nil {
				d.Message.Close()
			}
		})
	}
}

func wantTempFail(t *testing.T, d callout.Decision) {
	t.Helper()
	if !d.Reply.Temporary() || !strings.HasPrefix(d.Reply.String(), "451 4.7.1") {
		t.Errorf("reply %q (%s), want the 451 temporary failure", d.Reply.String(), d.Reason)
	}
}

func TestCommandConfig(t *testing.T) {
	for _, o := range []mapping.Command{
		{},
		{Argv: []string{"x"}, ExitCodes: map[int]string{0: "accept"}},
		{Argv: []string{"x"}, Default: "maybe"},
		{Argv: []string{"x"}, Reply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 bad\x00"}},
	} {
		if _, err := NewCommand(&o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
