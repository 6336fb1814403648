package builtin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/callouttest"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// rspamdBenchAnswer is an answer of rspamd 3.4 to an ordinary message
// (no action, its symbols and the milter block of milter_headers).
const rspamdBenchAnswer = `{"is_skipped":false,"score":-0.100000,"required_score":15.0,"action":"no action","symbols":{"ARC_NA":{"name":"ARC_NA","score":0.0,"metric_score":0.0,"description":"ARC signature absent"},"FROM_NO_DN":{"name":"FROM_NO_DN","score":0.0,"metric_score":0.0,"description":"From header does not have a display name"},"TO_MATCH_ENVRCPT_ALL":{"name":"TO_MATCH_ENVRCPT_ALL","score":0.0,"metric_score":0.0,"description":"All of the recipients match the envelope"},"MIME_GOOD":{"name":"MIME_GOOD","score":-0.100000,"metric_score":-0.100000,"description":"Known content-type","options":["text/plain"]},"FROM_EQ_ENVFROM":{"name":"FROM_EQ_ENVFROM","score":0.0,"metric_score":0.0,"description":"From address is the same as the envelope"},"MIME_TRACE":{"name":"MIME_TRACE","score":0.0,"metric_score":0.0,"options":["0:+"]},"RCVD_COUNT_ZERO":{"name":"RCVD_COUNT_ZERO","score":0.0,"metric_score":0.0,"description":"Message has no Received headers","options":["0"]},"RCPT_COUNT_ONE":{"name":"RCPT_COUNT_ONE","score":0.0,"metric_score":0.0,"description":"One recipient","options":["1"]}},"messages":{},"message-id":"1@example.org","time_real":0.205824,"milter":{"remove_headers":{"X-Spamd-Result":0,"X-Spam":0},"add_headers":{"X-Spamd-Result":{"order":-1,"value":"default: False [-0.10 / 15.00];\r\n\tMIME_GOOD(-0.10)[text/plain]"},"Authentication-Results":{"order":1,"value":"vm;\r\n\tnone"}}}}`

// BenchmarkRspamdService measures the service's own work per message
// against a server that answers at once.
func BenchmarkRspamdService(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, rspamdBenchAnswer)
	}))
	defer srv.Close()
	s, err := NewRspamd(&mapping.Rspamd{
		Backend: mapping.Backend{Address: strings.TrimPrefix(srv.URL, "http://"), Timeout: 10 * time.Second, MaxConns: 4},
		MaxSize: 10 << 20, Greylist: "accept", SpamHeader: "X-Spam", SubjectPrefix: "***SPAM***",
		RejectReply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 spam"}, TempfailReply: ocpsmtp.Reply{Code: 451, Text: "4.7.1 later"},
		MaxResponse: 1 << 20, DKIM: "skip",
	})
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\nMessage-ID: <1@example.org>\r\n\r\n" + strings.Repeat("hello world, this is a line of text.\r\n", 270))
	tx := &callout.Tx{Client: callout.Client{IP: "192.0.2.1", Helo: "h.example"}, Sender: callout.Address{Addr: "a@example.org"},
		Recipients: []callout.Address{{Addr: "b@example.com"}, {Addr: "c@example.com"}, {Addr: "d@example.com"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AdaptMessage(context.Background(), tx, callout.NewMessage(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRspamdRequest checks the request the service sends: the
// transaction's facts in rspamd's headers, the message as the body, the
// password and settings, and one connection reused for several messages.
func TestRspamdRequest(t *testing.T) {
	var got []*http.Request
	var bodies []string
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, bodies = append(got, r), append(bodies, string(b))
		conns[r.RemoteAddr] = true
		io.WriteString(w, `{"action":"no action","score":0,"messages":{}}`)
	}))
	defer srv.Close()
	s, err := NewRspamd(&mapping.Rspamd{
		Backend: mapping.Backend{Address: strings.TrimPrefix(srv.URL, "http://"), Timeout: 10 * time.Second, MaxConns: 1},
		MaxSize: 1 << 20, Password: "secret", SettingsID: "inbound", User: "fallback", Greylist: "accept", SpamHeader: "X-Spam",
		RejectReply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 spam"}, TempfailReply: ocpsmtp.Reply{Code: 451, Text: "4.7.1 later"},
		MaxResponse: 1 << 20, DKIM: "skip",
	})
	if err != nil {
		t.Fatal(err)
	}
	tx := &callout.Tx{Client: callout.Client{IP: "192.0.2.1", Helo: "client.example"}, Sender: callout.Address{Addr: "a@example.org"},
		Recipients: []callout.Address{{Addr: "b@example.com"}, {Addr: "c@example.com"}},
		Opts:       []ocpsmtp.Opt{{Key: ocpsmtp.OptQueueID, Value: "4F1AB2"}, {Key: ocpsmtp.OptAuthAuthen, Value: "alice"}}}
	const raw = "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n"
	for range 3 {
		if _, err := s.AdaptMessage(context.Background(), tx, callout.NewMessage([]byte(raw))); err != nil {
			t.Fatal(err)
		}
	}
	r := got[0]
	for k, want := range map[string]string{"IP": "192.0.2.1", "Helo": "client.example", "From": "<a@example.org>",
		"Rcpt": "<b@example.com>,<c@example.com>", "Queue-Id": "4F1AB2", "User": "alice", "Settings-Id": "inbound", "Password": "secret"} {
		if v := strings.Join(r.Header.Values(k), ","); v != want {
			t.Errorf("%s: %q, want %q", k, v, want)
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/checkv2" || bodies[0] != raw {
		t.Errorf("%s %s %q", r.Method, r.URL.Path, bodies[0])
	}
	if len(conns) != 1 {
		t.Errorf("%d connections for 3 messages, want one kept alive", len(conns))
	}
}

// BenchmarkRspamdReal measures the service against a real rspamd (which
// closes the connection after every answer), 8 messages at once: cpu-µs/op
// is this process's CPU time (user+system) per message, the figure that
// counts in opes-callout's CPU per message.
func BenchmarkRspamdReal(b *testing.B) {
	// rspamd's lookups go to a loopback port nobody listens on (a
	// resolver here would count in this process's CPU time).
	r := callouttest.StartRspamd(b, callouttest.RspamdOptions{DNS: "127.0.0.1:9"})
	o := rspamdOptions(r.Addr)
	o.Backend.MaxConns = 16
	s, err := NewRspamd(o)
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte("From: <sender@example.org>\r\nTo: <rcpt@example.com>\r\nDate: Mon, 7 Dec 2026 04:51:42 +0000\r\nMessage-Id: <1.2.3@client.bench.test>\r\n\r\n" +
		strings.Repeat("La de da de da 1.\r\n", 539))
	tx := &callout.Tx{Client: callout.Client{IP: "127.0.0.1", Helo: "client.bench.test"}, Sender: callout.Address{Addr: "sender@example.org"},
		Recipients: []callout.Address{{Addr: "rcpt@example.com"}, {Addr: "2rcpt@example.com"}, {Addr: "3rcpt@example.com"}}}
	for range 20 { // warm rspamd up
		if _, err := s.AdaptMessage(context.Background(), tx, callout.NewMessage(raw)); err != nil {
			b.Fatalf("%v\n%s", err, r.Log())
		}
	}
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AdaptMessage(context.Background(), tx, callout.NewMessage(raw)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the CPU time (user+system) of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
