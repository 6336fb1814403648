package milter

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
)

// BenchmarkTransaction runs whole messages (5 headers, 4 KiB body) over
// one loopback milter connection, with the framing guard ("framed") and
// with go-milter serving the raw connection ("bare").
func BenchmarkTransaction(b *testing.B) {
	for _, framed := range []bool{true, false} {
		name := "bare"
		if framed {
			name = "framed"
		}
		b.Run(name, func(b *testing.B) {
			h := &fakeHandler{req: allEvents}
			srv := NewServer(h, Options{Logger: slog.New(slog.DiscardHandler)})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			served := make(chan error, 1)
			go func() {
				if framed {
					served <- srv.Serve(ln)
				} else {
					served <- srv.gm.Serve(ln)
				}
			}()
			defer func() {
				_ = srv.Close()
				if err := <-served; err != nil && !errors.Is(err, ErrServerClosed) {
					b.Error(err)
				}
			}()
			s, err := gomilter.NewClient("tcp", ln.Addr().String(),
				gomilter.WithReadTimeout(5*time.Second)).Session(gomilter.NewMacroBag())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc\r\n"), 64)
			step := func(_ *gomilter.Action, err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			step(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
			step(s.Helo("h"))
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			for b.Loop() {
				h.mu.Lock()
				h.calls = h.calls[:0]
				h.mu.Unlock()
				step(s.Mail("a@example.org", ""))
				step(s.Rcpt("b@example.com", ""))
				step(s.DataStart())
				for _, k := range []string{"From", "To", "Subject", "Date", "Message-Id"} {
					step(s.HeaderField(k, " value of "+k, nil))
				}
				step(s.HeaderEnd())
				step(s.BodyChunk(body))
				_, act, err := s.End()
				step(act, err)
			}
		})
	}
}
