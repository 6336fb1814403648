package builtin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/callouttest"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// rspamdTestLua adds rules of the test's own to rspamd: a header
// X-Opes-Test naming the verdict wanted. The actions' thresholds are set
// far above what rspamd's own rules give ordinary mail offline.
const rspamdTestLua = `
local function has(task, v) local h = task:get_header('X-Opes-Test') return h and h:find(v, 1, true) ~= nil end
rspamd_config:register_symbol({name='OPES_TEST_ADD', score=60.0, callback=function(task) return has(task,'add') end})
rspamd_config:register_symbol({name='OPES_TEST_REWRITE', score=110.0, callback=function(task) return has(task,'rewrite') end})
rspamd_config:register_symbol({name='OPES_TEST_GREY', score=35.0, callback=function(task) return has(task,'grey') end})
rspamd_config:register_symbol({name='OPES_TEST_SOFT', type='prefilter', priority=10, callback=function(task)
  if has(task,'soft') then task:set_pre_result('soft reject', 'opes test soft reject') end end})
`

// RspamdTestConfig is the local.d of the tests' rspamd.
var rspamdTestLocalD = map[string]string{
	"milter_headers.conf": "use = [\"x-spamd-result\", \"authentication-results\"];\nskip_local = false;\nskip_authenticated = false;\n",
	"actions.conf":        "reject = 150;\nadd_header = 50;\nrewrite_subject = 100;\ngreylist = 30;\nsubject = \"***SPAM*** %s\";\n",
}

func rspamdOptions(addr string) *mapping.Rspamd {
	return &mapping.Rspamd{
		Backend: mapping.Backend{Address: addr, Timeout: 20 * time.Second, MaxConns: 4},
		MaxSize: 10 << 20, Greylist: "accept", SpamHeader: "X-Spam", SubjectPrefix: "***SPAM***",
		HeaderPrefix: "X-Spam-", RejectReply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 Message rejected as spam"},
		TempfailReply: ocpsmtp.Reply{Code: 451, Text: "4.7.1 Try again later"}, MaxResponse: 1 << 20, DKIM: "skip",
	}
}

// TestRspamdReal runs the service against a real rspamd, offline: every
// action, the milter block, and rspamd stopped.
func TestRspamdReal(t *testing.T) {
	dns := callouttest.StartDNS(t, nil)
	r := callouttest.StartRspamd(t, callouttest.RspamdOptions{DNS: dns.Addr, Lua: rspamdTestLua, LocalD: rspamdTestLocalD})
	tx := &callout.Tx{Client: callout.Client{IP: "192.0.2.1", Helo: "client.example.org"},
		Sender: callout.Address{Addr: "a@example.org"}, Recipients: []callout.Address{{Addr: "b@example.com"}}}
	msg := func(test string) *callout.Message {
		return callout.NewMessage([]byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\nX-Spam: forged\r\nX-Spam-Status: No, score=-99\r\n" +
			"X-Opes-Test: " + test + "\r\nMessage-ID: <1@example.org>\r\nDate: Mon, 7 Dec 2026 01:00:00 +0000\r\n\r\nhello\r\n"))
	}
	scan := func(o *mapping.Rspamd, m *callout.Message) callout.Decision {
		t.Helper()
		s, err := NewRspamd(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.AdaptMessage(context.Background(), tx, m)
		if err != nil {
			t.Fatalf("%v\n%s", err, r.Log())
		}
		return d
	}
	fields := func(d callout.Decision) string {
		var names []string
		for _, f := range d.Headers {
			n := f.Name
			if f.Top {
				n = "^" + n
			}
			names = append(names, n)
		}
		return strings.Join(names, " ")
	}
	o := rspamdOptions(r.Addr)

	if d := scan(o, sample(t, "gtube.eml")); d.Action != callout.ActionRefuse || d.Reply.String() != "550 5.7.1 Gtube pattern" {
		t.Errorf("GTUBE: %v %q (%s)", d.Action, d.Reply.String(), d.Reason)
	}
	d := scan(o, msg("none"))
	if d.Action != callout.ActionReplace || fields(d) != "^Authentication-Results X-Spamd-Result" {
		t.Errorf("no action: %v fields %q (%s)", d.Action, fields(d), d.Reason)
	}
	if out := string(all(t, d.Message)); strings.Contains(out, "X-Spam") {
		t.Errorf("no action: forged fields kept:\n%s", out)
	}
	d = scan(o, msg("add"))
	if fields(d) != "X-Spam ^Authentication-Results X-Spamd-Result" || d.Headers[0].Value != "Yes" {
		t.Errorf("add header: fields %q (%s)", fields(d), d.Reason)
	}
	d = scan(o, msg("rewrite"))
	if d.Message == nil {
		t.Fatalf("rewrite subject: %v (%s)", d.Action, d.Reason)
	}
	if out := string(all(t, d.Message)); !strings.Contains(out, "Subject: ***SPAM*** hi\r\n") {
		t.Errorf("rewrite subject:\n%s", out)
	}
	signed := callout.NewMessage(append([]byte("DKIM-Signature: v=1; d=example.org; s=s; b=x\r\n"), all(t, msg("rewrite"))...))
	d = scan(o, signed)
	if out := string(all(t, d.Message)); !strings.Contains(out, "Subject: hi\r\n") {
		t.Errorf("rewrite subject of a signed message with dkim = skip:\n%s", out)
	}
	d = scan(o, msg("grey"))
	if d.Action == callout.ActionRefuse {
		t.Errorf("greylist with greylist = accept: %v %q", d.Action, d.Reply.String())
	}
	og := rspamdOptions(r.Addr)
	og.Greylist = "tempfail"
	if d = scan(og, msg("grey")); d.Action != callout.ActionRefuse || d.Reply.Code != 451 {
		t.Errorf("greylist with greylist = tempfail: %v %q", d.Action, d.Reply.String())
	}
	if d = scan(o, msg("soft")); d.Action != callout.ActionRefuse || d.Reply.String() != "451 4.7.1 opes test soft reject" {
		t.Errorf("soft reject: %v %q", d.Action, d.Reply.String())
	}

	s, _ := NewRspamd(o)
	if h := s.CheckHealth(context.Background()); len(h) != 1 || !h[0].Up {
		t.Errorf("health: %+v", h)
	}
	r.Stop()
	_, err := s.AdaptMessage(context.Background(), tx, msg("none"))
	var be *callout.BackendError
	if !errors.As(err, &be) || be.Backend != "rspamd" {
		t.Errorf("rspamd stopped: %v, want a *BackendError", err)
	}
	if h := s.CheckHealth(context.Background()); h[0].Up {
		t.Errorf("health after stop: %+v", h)
	}
}

// fakeRspamd answers every request with the header fields hdr and the
// JSON body answer.
func fakeRspamd(t *testing.T, hdr map[string]string, answer string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestRspamdIncomingFieldsRemoved: the incoming fields with the
// configured prefix go whatever happens next: milter.no_action (the
// milter block is applied all the same, as rspamd's proxy does) and a
// message over max_size.
func TestRspamdIncomingFieldsRemoved(t *testing.T) {
	tx := &callout.Tx{}
	addr := fakeRspamd(t, nil, `{"action":"add header","score":9,"milter":{"no_action":true,`+
		`"add_headers":{"X-Spamd-Result":{"value":"default: False [9.00 / 15.00]","order":0}},"remove_headers":{"X-Old":0}}}`)
	s, _ := NewRspamd(rspamdOptions(addr))
	in := "From: a@example.org\r\nX-Spam-Status: Yes, forged\r\nX-Old: 1\r\nSubject: hi\r\n\r\nhello\r\n"
	d, err := s.AdaptMessage(context.Background(), tx, callout.NewMessage([]byte(in)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range d.Headers {
		names = append(names, f.String())
	}
	if got := strings.Join(names, "|"); got != "X-Rspamd-Action: add header|X-Spamd-Result: default: False [9.00 / 15.00]" {
		t.Errorf("no_action: fields %q", got)
	}
	if d.Action != callout.ActionReplace {
		t.Fatalf("no_action: %v, want the incoming fields removed", d.Action)
	}
	if out := string(all(t, d.Message)); out != "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n" {
		t.Errorf("no_action: %q", out)
	}

	o := rspamdOptions(addr)
	o.MaxSize = 10
	s, _ = NewRspamd(o)
	d, err = s.AdaptMessage(context.Background(), tx, callout.NewMessage([]byte(in)))
	if err != nil || d.Action != callout.ActionReplace {
		t.Fatalf("over max_size: %v %v, want the incoming fields removed", err, d.Action)
	}
	if out := string(all(t, d.Message)); strings.Contains(out, "X-Spam") {
		t.Errorf("over max_size: %q", out)
	}
	if len(d.Headers) != 1 || d.Headers[0].String() != "X-Rspamd-Scanned: no, message of 81 bytes over max_size 10" {
		t.Errorf("over max_size: fields %+v", d.Headers)
	}
}

// TestRspamdBounded: an answer whose HTTP header runs beyond 64 KiB is
// the backend's failure, not read to its end.
func TestRspamdBounded(t *testing.T) {
	addr := fakeRspamd(t, map[string]string{"X-Big": strings.Repeat("a", 1<<20)}, `{"action":"no action","score":0}`)
	s, _ := NewRspamd(rspamdOptions(addr))
	_, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte("From: a@example.org\r\n\r\nhi\r\n")))
	var be *callout.BackendError
	if !errors.As(err, &be) {
		t.Errorf("1 MiB answer header: %v, want a *BackendError", err)
	}
}

// TestRspamdReply: rspamd's message replaces the text after the
// configured reply's enhanced status code, if it has one; an unusable
// message leaves the configured reply.
func TestRspamdReply(t *testing.T) {
	r := &Rspamd{}
	for _, tc := range []struct {
		base     ocpsmtp.Reply
		msg, out string
	}{
		{ocpsmtp.Reply{Code: 550, Text: "5.7.1 Message rejected as spam"}, "Gtube pattern", "550 5.7.1 Gtube pattern"},
		{ocpsmtp.Reply{Code: 550, Text: "Go away"}, "Gtube pattern", "550 Gtube pattern"},
		{ocpsmtp.Reply{Code: 451, Text: "4.7.1 Try again later"}, "", "451 4.7.1 Try again later"},
		{ocpsmtp.Reply{Code: 550, Text: "Go away"}, "5 spam", "550 Go away"},
		{ocpsmtp.Reply{Code: 550, Text: "5.7.1 No"}, "bad\r\nline", "550 5.7.1 bad  line"},
	} {
		got := r.reply(tc.base, rspamdResult{Messages: rspamdMessages{SMTPMessage: tc.msg}})
		if got.String() != tc.out || got.Validate() != nil {
			t.Errorf("%q + %q = %q (%v), want %q", tc.base.String(), tc.msg, got.String(), got.Validate(), tc.out)
		}
	}
}

// TestRspamdStaleConnection: a kept-alive connection that rspamd closes
// just as the next request goes out (its keep-alive ran out) is retried
// once on another connection, not taken for rspamd being down.
func TestRspamdStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const answer = `{"action":"no action","score":0}`
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(first bool) {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if first && i == 1 {
						return // closed instead of answering the second request
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
				}
			}(n == 0)
		}
	}()
	s, _ := NewRspamd(rspamdOptions(ln.Addr().String()))
	for i := range 2 {
		d, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte("From: a@example.org\r\n\r\nhi\r\n")))
		if err != nil || d.Action == callout.ActionRefuse {
			t.Fatalf("message %d: %v %v", i+1, err, d.Action)
		}
	}
}

// TestRspamdRewriteSubject: rspamd's subject replaces the field, or is
// added after the last field of a message without one; subject-tag's
// prefix alike.
func TestRspamdRewriteSubject(t *testing.T) {
	addr := fakeRspamd(t, nil, `{"action":"rewrite subject","score":9,"subject":"***SPAM*** caf\u00e9"}`)
	s, _ := NewRspamd(rspamdOptions(addr))
	for in, want := range map[string]string{
		"From: a@example.org\r\nSubject: old\r\nTo: b@example.org\r\n\r\nhi\r\n": "From: a@example.org\r\nSubject: =?utf-8?q?***SPAM***_caf=C3=A9?=\r\nTo: b@example.org\r\n\r\nhi\r\n",
		"From: a@example.org\r\nTo: b@example.org\r\n\r\nhi\r\n":                 "From: a@example.org\r\nTo: b@example.org\r\nSubject: =?utf-8?q?***SPAM***_caf=C3=A9?=\r\n\r\nhi\r\n",
	} {
		d, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte(in)))
		if err != nil || d.Action != callout.ActionReplace {
			t.Fatalf("%v %v", err, d.Action)
		}
		if out := string(all(t, d.Message)); out != want {
			t.Errorf("got  %q\nwant %q", out, want)
		}
	}
	d, err := NewSubjectTag(&mapping.SubjectTag{Prefix: "[EXT]", DKIM: "skip"}).AdaptMessage(context.Background(), &callout.Tx{},
		callout.NewMessage([]byte("From: a@example.org\r\n\r\nhi\r\n")))
	if err != nil || d.Action != callout.ActionReplace || string(all(t, d.Message)) != "From: a@example.org\r\nSubject: [EXT]\r\n\r\nhi\r\n" {
		t.Errorf("subject-tag without a Subject: %v %v", err, d.Action)
	}
}
