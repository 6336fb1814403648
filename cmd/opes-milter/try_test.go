package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

const tryMultipart = "From: a@example.org\nTo: friend@example.com\nSubject: with attachment\nMIME-Version: 1.0\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\n\n" +
	"--b1\nContent-Type: text/plain; charset=us-ascii\n\nhello\n" +
	"--b1\nContent-Type: application/octet-stream; name=\"run.exe\"\nContent-Disposition: attachment; filename=\"run.exe\"\nContent-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA\n" +
	"--b1--\n"

// TestTryAsAnMTA: try -local runs the [callout] services of the same file
// in process; its exit status is the verdict; it stops after every
// recipient was refused; - reads standard input; it prints the MIME
// structure before and after, and the replaced body only with -body.
func TestTryAsAnMTA(t *testing.T) {
	base := contribFor(t)
	ln := freeAddr(t) // nothing listens: without -local every server is down
	path := writeTemp(t, "c.toml", strings.Replace(base, `addresses = ["127.0.0.1:8891"]`, `addresses = ["`+ln+`"]`, 1))
	plain := writeTemp(t, "m.eml", "From: a@example.org\nSubject: try\n\nhello\n")
	for _, tt := range []struct {
		name      string
		args      []string
		stdin     string
		code      int
		want, not []string
	}{
		{"accepted", []string{"-local", "-rcpt", "blocked@example.com", "-rcpt", "friend@example.com", plain}, "", 0,
			[]string{
				"rcpt <blocked@example.com> reject 550 5.1.1",
				"rcpt <friend@example.com> continue",
				"add header       X-OPES-Tag: tagged by opes-callout",
				"  replace body     ",
				"before (2 recipients)\n  message          ",
				"after (1 recipient accepted)\n",
				"verdict          accepted\n",
			},
			[]string{"    | "}},
		{"with -body", []string{"-local", "-body", plain}, "", 0, []string{"    | This message was processed by an OPES system."}, nil},
		{"every recipient refused", []string{"-local", "-rcpt", "blocked@example.com", plain}, "", 3,
			[]string{"every recipient was refused: the MTA ends the transaction here (no DATA)\nverdict          rejected\n"},
			[]string{"data ", "end of headers", "add header"}},
		{"stdin and attachment removed", []string{"-local", "-rcpt", "friend@example.com", "-"}, tryMultipart, 0,
			[]string{
				"before (1 recipient)",
				"  multipart/mixed",
				`    application/octet-stream "run.exe" (base64)`,
				"verdict          accepted",
			}, nil},
		{"server down", []string{plain}, "", 4, []string{"rcpt <recipient@example.com> tempfail 451 4.3.0", "verdict          tempfailed"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runStdin(context.Background(), append([]string{"try", "-config", path}, tt.args...), strings.NewReader(tt.stdin), &out, &errb)
			got := out.String()
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, got, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%s", w, got)
				}
			}
			if tt.name == "stdin and attachment removed" {
				after := got[strings.Index(got, "after ("):]
				if strings.Contains(after, "run.exe") {
					t.Errorf("the attachment is still there after:\n%s", after)
				}
			}
		})
	}
}
