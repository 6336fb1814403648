package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/mapping"
)

// TestCheckPrintsWhatServicesDo: for services whose tables set only the
// keys their kind requires, "opes-callout check" prints the defaults the
// services then apply (the refusal each one answers with), so that the one
// set of defaults in mapping is what an operator reads.
func TestCheckPrintsWhatServicesDo(t *testing.T) {
	path := writeConfig(t, `[callout]
[callout.services.rp]
uri = "urn:rp"
kind = "recipient-policy"
deny = ["x@example.com"]
[callout.services.sl]
uri = "urn:sl"
kind = "size-limit"
max = 10
`)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "-config", path}, &out, &errb); code != 0 {
		t.Fatalf("check: exit %d, %s", code, errb.String())
	}
	cfg, err := mapping.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	services, err := builtin.NewServices(cfg.Callout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rcpt, _ := services["urn:rp"].(callout.RcptAdapter).AdaptRcpt(ctx, &callout.Tx{}, callout.Address{Addr: "x@example.com"})
	msg, _ := services["urn:sl"].(callout.MessageAdapter).AdaptMessage(ctx, &callout.Tx{},
		callout.NewMessage([]byte("Subject: big\r\n\r\nmore than ten octets\r\n")))
	for what, d := range map[string]callout.Decision{"recipient-policy": rcpt, "size-limit": msg} {
		if d.Action != callout.ActionRefuse {
			t.Fatalf("%s: %v, want a refusal", what, d.Action)
		}
		if want := fmt.Sprintf("reply %q", d.Reply.String()); !strings.Contains(out.String(), want) {
			t.Errorf("%s refuses with %s; check printed:\n%s", what, want, out.String())
		}
	}
}
