package builtin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// rawRspamd is a server that reads one request per connection turn and
// writes the canned answer: the exact bytes of the requests it read and
// the connections it accepted are kept.
type rawRspamd struct {
	addr string
	mu   sync.Mutex
	reqs []string
	cons int
}

func startRawRspamd(t *testing.T, answer string) *rawRspamd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &rawRspamd{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cons++
			s.mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var req strings.Builder
					n := 0
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						req.WriteString(line)
						if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
							n, _ = strconv.Atoi(strings.TrimSpace(v))
						}
						if line == "\r\n" {
							break
						}
					}
					body := make([]byte, n)
					if _, err := io.ReadFull(br, body); err != nil {
						return
					}
					req.Write(body)
					s.mu.Lock()
					s.reqs = append(s.reqs, req.String())
					s.mu.Unlock()
					if _, err := io.WriteString(c, answer); err != nil || strings.Contains(answer, "Connection: close") {
						return
					}
				}
			}()
		}
	}()
	return s
}

// TestRspamdRequestBytes: the exact request of one scan, the transaction's
// facts in rspamd's fields in a fixed order, a field whose value has a
// control character left out (the scan goes on without it), the message
// as the body.
func TestRspamdRequestBytes(t *testing.T) {
	srv := startRawRspamd(t, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 32\r\n\r\n"+`{"action":"no action","score":0}`)
	o := rspamdOptions(srv.addr)
	o.SettingsID, o.Password = "inbound", "secret"
	s, err := NewRspamd(o)
	if err != nil {
		t.Fatal(err)
	}
	tx := &callout.Tx{Client: callout.Client{IP: "192.0.2.1", Helo: "bad\x01helo"}, Sender: callout.Address{Addr: "a@example.org"},
		Recipients: []callout.Address{{Addr: "b@example.com"}, {Addr: "c@example.com"}},
		Opts:       []ocpsmtp.Opt{{Key: ocpsmtp.OptQueueID, Value: "4F1AB2"}, {Key: ocpsmtp.OptAuthAuthen, Value: "alice"}}}
	const raw = "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n"
	for range 2 {
		if _, err := s.AdaptMessage(context.Background(), tx, callout.NewMessage([]byte(raw))); err != nil {
			t.Fatal(err)
		}
	}
	want := "POST /checkv2 HTTP/1.1\r\nHost: rspamd\r\nContent-Length: " + strconv.Itoa(len(raw)) + "\r\nIP: 192.0.2.1\r\nFrom: <a@example.org>\r\n" +
		"Rcpt: <b@example.com>\r\nRcpt: <c@example.com>\r\nQueue-Id: 4F1AB2\r\nUser: alice\r\nSettings-ID: inbound\r\nPassword: secret\r\n\r\n" + raw
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.reqs) != 2 || srv.reqs[0] != want {
		t.Errorf("requests %q\nwant %q", srv.reqs, want)
	}
	if srv.cons != 2 {
		t.Errorf("%d connections for 2 answers with Connection: close, want 2", srv.cons)
	}
}

// TestRspamdAnswerFraming: answers framed by Content-Length, chunked or
// by the end of the connection are read; one over max_response, cut
// short or not HTTP is the backend's failure; a status other than 200
// too.
func TestRspamdAnswerFraming(t *testing.T) {
	const js = `{"action":"add header","score":7}`
	for _, tc := range []struct {
		name, answer string
		ok           bool
		tooLarge     bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(js)) + "\r\n\r\n" + js, true, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n" + js[:5] + "\r\n" +
			strconv.FormatInt(int64(len(js)-5), 16) + "\r\n" + js[5:] + "\r\n0\r\n\r\n", true, false},
		{"until close", "HTTP/1.0 200 OK\r\n\r\n" + js, true, false},
		{"over max_response", "HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n" + js, false, true},
		{"over max_response unframed", "HTTP/1.0 200 OK\r\n\r\n" + js + strings.Repeat(" ", 1<<20), false, true},
		{"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + js, false, false},
		{"not HTTP", "RSPAMD/1.3 0 EX_OK\r\n\r\n", false, false},
		{"status", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, tc.answer)
			}()
			s, _ := NewRspamd(rspamdOptions(ln.Addr().String()))
			d, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte("From: a@example.org\r\n\r\nhi\r\n")))
			var be *callout.BackendError
			switch {
			case tc.ok && (err != nil || d.Reason != "rspamd: add header, score 7.00"):
				t.Errorf("%v %q", err, d.Reason)
			case !tc.ok && !errors.As(err, &be):
				t.Errorf("%v, want a *BackendError", err)
			case tc.tooLarge && !errors.Is(err, callout.ErrResponseTooLarge):
				t.Errorf("%v, want ErrResponseTooLarge", err)
			}
			if h := s.backend.Health(); h.Up != tc.ok {
				t.Errorf("backend up %v after the answer, want %v", h.Up, tc.ok)
			}
		})
	}
}

// TestRspamdCanceled: a transaction ended while rspamd thinks ends the
// exchange at once.
func TestRspamdCanceled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never answered
		}
	}()
	s, _ := NewRspamd(rspamdOptions(ln.Addr().String()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.AdaptMessage(ctx, &callout.Tx{}, callout.NewMessage([]byte("From: a@example.org\r\n\r\nhi\r\n")))
		done <- err
	}()
	c := <-accepted
	defer c.Close()
	cancel()
	if err := <-done; err == nil {
		t.Error("canceled scan succeeded")
	}
}
