package builtin

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
)

// TestDefaultsAsChecked holds the one set of defaults (mapping/defaults.go)
// against what the services do: for each kind with a default, a service
// table with only the keys the kind requires is loaded, and what "check"
// prints for it (mapping.Config.Format) must be what the service applies,
// built from that configuration and built from options a caller left zero.
func TestDefaultsAsChecked(t *testing.T) {
	const conf = `[callout]
[callout.services.rp]
uri = "urn:rp"
kind = "recipient-policy"
deny = ["x@example.com"]
[callout.services.af]
uri = "urn:af"
kind = "attachment-filter"
extensions = [".exe"]
action = "reject"
[callout.services.cmd]
uri = "urn:cmd"
kind = "command"
argv = ["cat"]
[callout.services.sl]
uri = "urn:sl"
kind = "size-limit"
max = 1000
`
	cfg, err := mapping.Load("t.toml", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := cfg.Format(&out); err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	services, err := NewServices(cfg.Callout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	printedAs := func(what, s string) {
		t.Helper()
		if !strings.Contains(printed, s) {
			t.Errorf("%s: the service applies %s; check printed:\n%s", what, s, printed)
		}
	}
	refusal := func(d callout.Decision, err error) string {
		t.Helper()
		if err != nil || d.Action != callout.ActionRefuse {
			t.Fatalf("decision %v, %v; want a refusal", d.Action, err)
		}
		return fmt.Sprintf("reply %q", d.Reply.String())
	}
	x := callout.Address{Addr: "x@example.com"}

	// recipient-policy: the reply a denied recipient gets.
	printedAs("recipient-policy", refusal(services["urn:rp"].(*RecipientPolicy).AdaptRcpt(ctx, &callout.Tx{}, x)))
	rp, err := NewRecipientPolicy(&mapping.RecipientPolicy{Deny: []string{"x@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	printedAs("recipient-policy, zero options", refusal(rp.AdaptRcpt(ctx, &callout.Tx{}, x)))

	// attachment-filter: the refusal, and the replacement notice.
	msg := func() *callout.Message { return sample(t, "attachments.eml") }
	printedAs("attachment-filter", refusal(services["urn:af"].(*AttachmentFilter).AdaptMessage(ctx, &callout.Tx{}, msg())))
	af, err := NewAttachmentFilter(&mapping.AttachmentFilter{Extensions: []string{".exe"}, Action: AttachmentReject, Signed: SignedPass})
	if err != nil {
		t.Fatal(err)
	}
	printedAs("attachment-filter, zero options", refusal(af.AdaptMessage(ctx, &callout.Tx{}, msg())))
	for what, f := range map[string]*AttachmentFilter{"configured": services["urn:af"].(*AttachmentFilter), "zero options": af} {
		printedAs("attachment-filter replacement, "+what, fmt.Sprintf("replacement %q", f.notice))
	}

	// command: timeout, output limit and reply.
	cmdZero, err := NewCommand(&mapping.Command{Argv: []string{"cat"}})
	if err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]*Command{"configured": services["urn:cmd"].(*Command), "zero options": cmdZero} {
		printedAs("command "+what, fmt.Sprintf("timeout %v,", c.timeout))
		printedAs("command "+what, fmt.Sprintf("reply %q", c.reply.String()))
		if c.maxOutput != mapping.DefaultCommandMaxOutput {
			t.Errorf("command %s: max output %d", what, c.maxOutput)
		}
		printedAs("command "+what, "max output 64MiB")
		if c.tempFail.String() != mapping.DefaultCommandTempFailReply {
			t.Errorf("command %s: tempfail reply %q", what, c.tempFail.String())
		}
	}
	if d := mapping.DefaultOptions(mapping.KindCommand).(*mapping.Command); d.Timeout != 30*time.Second {
		t.Errorf("command default timeout %v", d.Timeout)
	}

	// size-limit: the reply of a message over max.
	printedAs("size-limit", refusal(services["urn:sl"].(*SizeLimit).AdaptMessage(ctx, &callout.Tx{}, msg())))
	sl, err := NewSizeLimit(&mapping.SizeLimit{Max: 1000})
	if err != nil {
		t.Fatal(err)
	}
	printedAs("size-limit, zero options", refusal(sl.AdaptMessage(ctx, &callout.Tx{}, msg())))
}
