package callout_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// serve starts srv on a loopback listener and returns its address.
func serve(t *testing.T, srv *callout.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ocp.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// process plays a processor (ocptest.Process).
var process = ocptest.Process

// part is one original part a test processor sends.
type part = ocptest.Part

// params returns the named parameters of m as "Name=value" strings.
func params(m *ocp.Message) []string {
	var out []string
	for _, p := range m.Named {
		if a, ok := p.Value().(ocp.Atom); ok {
			out = append(out, p.Name+"="+string(a))
		}
	}
	return out
}

var receiverOffer = ocpsmtp.Profile{
	URI:         ocpsmtp.ReceiverURI,
	Adaptive:    []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA},
	Informative: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO},
}

func envelope(raw string, rcpts ...string) []part {
	ps := []part{{Part: ocpsmtp.PartIP, Payload: "192.0.2.1"}, {Part: ocpsmtp.PartHELO, Payload: "mail.example.org"},
		{Part: ocpsmtp.PartMAIL, Payload: "<alice@example.org> SIZE=100"}}
	for _, r := range rcpts {
		ps = append(ps, part{Part: ocpsmtp.PartRCPT, Payload: r})
	}
	// RAWDATA in chunks of 100 octets, as a processor streams it.
	for len(raw) > 100 {
		ps = append(ps, part{Part: ocpsmtp.PartRAWDATA, Payload: raw[:100]})
		raw = raw[100:]
	}
	return append(ps, part{Part: ocpsmtp.PartRAWDATA, Payload: raw})
}
