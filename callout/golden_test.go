package callout_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/callout/promobserver"
	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// readTranscript parses testdata/profile/NAME: each step is sent by the
// processor (P) or expected from the server (S), in canonical wire form.
var readTranscript = ocptest.ReadTranscript

// replay runs the transcript against srv over loopback TCP: the
// processor's messages are written as they are, the server's must come
// back byte for byte.
func replay(t *testing.T, srv *callout.Server, steps []ocpsmtp.Step) {
	conn := ocptest.ServeAndDial(t, srv)
	dec := ocp.NewDecoder(bufio.NewReader(conn), ocp.Limits{})
	for i, st := range steps {
		if !st.FromServer {
			if _, err := conn.Write(st.Wire); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			continue
		}
		m, err := dec.Decode()
		if err != nil {
			t.Fatalf("step %d: waiting for %q: %v", i, st.Wire, err)
		}
		if got := ocp.AppendMessage(nil, m); !bytes.Equal(got, st.Wire) {
			t.Fatalf("step %d: server sent\n%q\nwant\n%q", i, got, st.Wire)
		}
	}
	// After the processor's TE nothing more may come for the
	// transaction: the next message is the server's CE when we leave.
	conn.Write([]byte("CE;\r\n"))
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if m, err := dec.Decode(); err == nil {
		t.Fatalf("unexpected message after the transcript: %q", ocp.AppendMessage(nil, m))
	} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server did not close after CE")
	}
}

// TestGoldenReceiver replays testdata/profile/receiver.txt against
// opes-callout configured with a recipient-policy and a header-tag
// service: the server's side must match the transcript exactly.
func TestGoldenReceiver(t *testing.T) {
	policy, err := builtin.NewRecipientPolicy(&mapping.RecipientPolicy{
		Deny:  []string{"nobody@example.com"},
		Reply: ocpsmtp.Reply{Code: 550, Text: "5.1.1 {rcpt}: Recipient address rejected: User unknown"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := builtin.NewHeaderTag(&mapping.HeaderTag{Headers: []mapping.Header{
		{Name: "X-Spam-Flag", Value: "NO"}, {Name: "X-Spam-Score", Value: "0.1 (threshold 5.0)"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := promobserver.New(reg)
	srv := &callout.Server{Observer: m, Services: map[string]callout.Service{
		"http://services.example.net/opes/recipient-check": policy,
		"http://services.example.net/opes/spam-tag":        tag,
	}}
	replay(t, srv, readTranscript(t, "receiver.txt"))
	want := `
# HELP opes_callout_service_calls_total Service calls by service (its configured name), part and verdict (keep, replace, reject, tempfail, error).
# TYPE opes_callout_service_calls_total counter
opes_callout_service_calls_total{part="RAWDATA",service="http://services.example.net/opes/spam-tag",verdict="keep"} 1
opes_callout_service_calls_total{part="RCPT",service="http://services.example.net/opes/recipient-check",verdict="keep"} 1
opes_callout_service_calls_total{part="RCPT",service="http://services.example.net/opes/recipient-check",verdict="reject"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "opes_callout_service_calls_total"); err != nil {
		t.Error(err)
	}
}

// senderRewrite is the service of the sender transcript: the sender moves
// to the public domain and the original is recorded in a header field.
type senderRewriteTag struct{}

func (senderRewriteTag) Needs() callout.Needs {
	return callout.Needs{
		Adapt: []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartRAWDATA},
		Read:  []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartRCPT},
	}
}

func (senderRewriteTag) AdaptMail(_ context.Context, tx *callout.Tx, from callout.Address) (callout.Decision, error) {
	if tx.AuthUser() != "alice" {
		return callout.Keep(), nil
	}
	return callout.ReplaceAddress(from.WithAddr(from.Local()+"@example.org")).WithHeader("X-Original-Sender", from.Addr), nil
}

func (senderRewriteTag) AdaptMessage(context.Context, *callout.Tx, *callout.Message) (callout.Decision, error) {
	return callout.Keep(), nil
}

// TestGoldenSender replays testdata/profile/sender.txt.
func TestGoldenSender(t *testing.T) {
	srv := &callout.Server{
		Services:   map[string]callout.Service{"http://services.example.net/opes/sender-rewrite": senderRewriteTag{}},
		Extensions: []string{"SIZE", "8BITMIME", "DSN"},
	}
	replay(t, srv, readTranscript(t, "sender.txt"))
}
