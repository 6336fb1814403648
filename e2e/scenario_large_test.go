package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// largeMessageSize is the size of the large scenario's message on the wire.
const largeMessageSize = 20 << 20

// TestScenarioLargeMessage: a 20 MiB message (a text part and a 15 MiB
// attachment that no service touches) through Postfix and Sendmail with
// the shipped configuration. The disclaimer changes the text part, so the
// whole body is streamed to opes-callout and replaced; the attachment
// arrives with the SHA-256 it was sent with.
func TestScenarioLargeMessage(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	// Random bytes, so nothing along the way can compress or dedupe them;
	// a fixed seed, so a failure can be reproduced.
	// Base64 turns each 57 bytes into a line of 76 characters and CRLF.
	data := make([]byte, (largeMessageSize-4096)/78*57)
	rng := rand.New(rand.NewPCG(7, 10))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	big := attachment{"archive.bin", "application/octet-stream", data}
	raw := scenarioMessage("sender@example.org", "friend@example.com", "Large", "The archive is attached.\n", big)
	t.Logf("message %d bytes, attachment %d bytes, sha256 %s", len(raw), len(data), sha256Hex(data))
	if len(raw) < largeMessageSize-(1<<20) || len(raw) > largeMessageSize {
		t.Fatalf("message is %d bytes, want about 20 MiB", len(raw))
	}
	for _, m := range StartMTAs(t, op, PostfixOptions{}, SendmailOptions{}) {
		t.Run(m.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			d := Send(ctx, m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, raw)
			accepted := time.Since(start)
			if !d.Accepted() {
				t.Fatalf("not accepted: %+v", d)
			}
			c := m.Sink.Wait(t, 1, time.Minute)[0]
			t.Logf("%s: accepted after %v, relayed after %v", m.Name, accepted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			checkAdapted(t, c)
			leaves, err := mimeLeaves(c.Raw)
			if err != nil {
				t.Fatalf("the delivered MIME does not parse: %v", err)
			}
			if len(leaves) != 2 || leaves[1].filename != big.name {
				t.Fatalf("delivered %d parts", len(leaves))
			}
			if got := leaves[1].data; !bytes.Equal(got, data) {
				t.Errorf("attachment: %d bytes, sha256 %s; sent %d bytes, sha256 %s",
					len(got), sha256Hex(got), len(data), sha256Hex(data))
			}
		})
	}
}
