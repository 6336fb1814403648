package builtin

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestReadSpamdReply(t *testing.T) {
	tests := []struct {
		name, in string
		want     spamdReply
		err      string
	}{
		{"symbols", "SPAMD/1.1 0 EX_OK\r\nContent-length: 11\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,OTHER",
			spamdReply{Spam: true, Score: 1000, Threshold: 5, Body: []byte("GTUBE,OTHER")}, ""},
		{"negative score, no body", "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: False ; -1.5 / 5.0\r\n\r\n",
			spamdReply{Score: -1.5, Threshold: 5, Body: []byte{}}, ""},
		{"no content-length", "SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.0 / 5.0\r\n\r\nA,B",
			spamdReply{Threshold: 5, Body: []byte("A,B")}, ""},
		{"error code", "SPAMD/1.0 76 Bad header line: x\r\n", spamdReply{}, "spamd error 76: Bad header line: x"},
		{"not spamd", "HTTP/1.1 200 OK\r\n\r\n", spamdReply{}, `not a spamd answer: "HTTP/1.1 200 OK"`},
		{"no spam header", "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n", spamdReply{}, "answer without a Spam header"},
		{"bad score", "SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5.0\r\n\r\n", spamdReply{}, `bad score in Spam header "True ; NaN / 5.0"`},
		{"too large", "SPAMD/1.1 0 EX_OK\r\nContent-length: 99999999\r\nSpam: True ; 1 / 5\r\n\r\n", spamdReply{}, "callout: backend response too large: Content-length 99999999 over 1024"},
		{"short body", "SPAMD/1.1 0 EX_OK\r\nContent-length: 10\r\nSpam: True ; 1 / 5\r\n\r\nabc", spamdReply{}, "body: unexpected EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readSpamdReply(bufio.NewReader(strings.NewReader(tc.in)), 1024)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Spam != tc.want.Spam || got.Score != tc.want.Score || got.Threshold != tc.want.Threshold || !bytes.Equal(got.Body, tc.want.Body) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzSpamdReply: no answer makes the parser panic or hold more than its
// limit.
func FuzzSpamdReply(f *testing.F) {
	f.Add([]byte("SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: True ; 15.0 / 5.0\r\n\r\nGTUBE"))
	f.Add([]byte("SPAMD/1.0 76 Bad header line\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := readSpamdReply(bufio.NewReader(bytes.NewReader(b)), 4096)
		if err == nil && len(rep.Body) > 4096 {
			t.Fatalf("body of %d bytes over the limit", len(rep.Body))
		}
		rep.symbols()
	})
}

// fakeSpamd answers every request with answer after reading it, and
// hands the request to got.
func fakeSpamd(t *testing.T, answer string, got chan<- []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var req bytes.Buffer
				n := -1
				for {
					line, err := br.ReadString('\n')
					req.WriteString(line)
					if err != nil {
						return
					}
					if v, ok := strings.CutPrefix(line, "Content-length: "); ok {
						n, _ = strconv.Atoi(strings.TrimSpace(v))
					}
					if line == "\r\n" {
						break
					}
				}
				body := make([]byte, n)
				io.ReadFull(br, body)
				req.Write(body)
				got <- req.Bytes()
				io.WriteString(c, answer)
			}()
		}
	}()
	return ln.Addr().String()
}

func spamdOptions(addr string) *mapping.Spamd {
	return &mapping.Spamd{
		Backend: mapping.Backend{Address: addr, Timeout: 20 * time.Second, MaxConns: 2},
		MaxSize: 1 << 20, Request: "SYMBOLS", HeaderPrefix: "X-Spam-",
		Tag: 2, Tag2: 6.2, Kill: 6.9, Tag2Actions: []string{"subject"}, SubjectPrefix: "***SPAM***",
		KillAction: "reject", Reply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 Message rejected as spam"}, DKIM: "skip",
	}
}

const forged = "From: a@example.com\r\nX-Spam-Status: No, score=-99\r\nSubject: hello\r\nx-spam-flag: NO\r\n\r\nbody\r\n"

// TestSpamdThresholds runs the service against a fake spamd answering one
// score each: below tag, tag, tag2, kill, and checks the request bytes.
func TestSpamdThresholds(t *testing.T) {
	const stripped = "From: a@example.com\r\nSubject: hello\r\n\r\nbody\r\n"
	tests := []struct {
		score                        string
		action                       callout.Action
		fields, subject, reply, advc string
	}{
		{"1.0", callout.ActionReplace, "", "hello", "", ""},
		{"3.0", callout.ActionReplace, "X-Spam-Score: 3|X-Spam-Level: ***|X-Spam-Status: No, score=3 tag=2 tag2=6.2 kill=6.9 tests=[A_RULE, B_RULE]", "hello", "", ""},
		{"6.5", callout.ActionReplace, "X-Spam-Flag: YES|X-Spam-Score: 6.5|X-Spam-Level: ******|X-Spam-Status: Yes, score=6.5 tag=2 tag2=6.2 kill=6.9 tests=[A_RULE, B_RULE]", "***SPAM*** hello", "", ""},
		{"7.0", callout.ActionRefuse, "", "", "550 5.7.1 Message rejected as spam", ""},
	}
	for _, tc := range tests {
		t.Run(tc.score, func(t *testing.T) {
			got := make(chan []byte, 1)
			addr := fakeSpamd(t, "SPAMD/1.1 0 EX_OK\r\nContent-length: 13\r\nSpam: True ; "+tc.score+" / 5.0\r\n\r\nA_RULE,B_RULE", got)
			o := spamdOptions(addr)
			o.User = "filter"
			s, err := NewSpamd(o)
			if err != nil {
				t.Fatal(err)
			}
			d, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte(forged)))
			if err != nil {
				t.Fatal(err)
			}
			req := <-got
			if want := "SYMBOLS SPAMC/1.5\r\nUser: filter\r\nContent-length: " + strconv.Itoa(len(stripped)) + "\r\n\r\n" + stripped; string(req) != want {
				t.Errorf("request\n%q\nwant\n%q", req, want)
			}
			if d.Action != tc.action {
				t.Fatalf("action %v (%s), want %v", d.Action, d.Reason, tc.action)
			}
			if tc.action == callout.ActionRefuse {
				if d.Reply.String() != tc.reply {
					t.Errorf("reply %q", d.Reply.String())
				}
				return
			}
			var names []string
			for _, f := range d.Headers {
				names = append(names, f.String())
			}
			if got := strings.Join(names, "|"); got != tc.fields {
				t.Errorf("fields\n%s\nwant\n%s", got, tc.fields)
			}
			out := string(all(t, d.Message))
			if strings.Contains(strings.ToLower(out), "x-spam-") {
				t.Errorf("incoming X-Spam fields kept:\n%s", out)
			}
			if !strings.Contains(out, "Subject: "+tc.subject+"\r\n") {
				t.Errorf("subject: want %q in\n%s", tc.subject, out)
			}
		})
	}
}

// TestSpamdOptions: compression, quarantine at kill, max_size, a signed
// message keeps its subject, and a dead spamd is a *BackendError.
func TestSpamdOptions(t *testing.T) {
	got := make(chan []byte, 1)
	addr := fakeSpamd(t, "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; 50 / 5.0\r\n\r\n", got)

	o := spamdOptions(addr)
	o.Compress, o.KillAction, o.Tag2Actions = true, "quarantine", []string{"subject", "quarantine"}
	s, _ := NewSpamd(o)
	signed := "DKIM-Signature: v=1; d=example.com; s=s; b=x\r\n" + forged
	d, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte(signed)))
	if err != nil {
		t.Fatal(err)
	}
	req := <-got
	head, body, _ := bytes.Cut(req, []byte("\r\n\r\n"))
	if !bytes.Contains(head, []byte("Compress: zlib\r\n")) {
		t.Errorf("request header %q lacks Compress", head)
	}
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.HasPrefix(plain, []byte("DKIM-Signature:")) || bytes.Contains(plain, []byte("X-Spam")) {
		t.Errorf("decompressed request %q", plain)
	}
	if d.Advice != ocpsmtp.AdviceQuarantine || d.Action != callout.ActionReplace {
		t.Errorf("kill quarantine: %v advice %q", d.Action, d.Advice)
	}
	if out := all(t, d.Message); !bytes.Contains(out, []byte("Subject: hello\r\n")) {
		t.Errorf("signed message: subject changed:\n%s", out)
	}

	o = spamdOptions(addr)
	o.MaxSize = 10
	s, _ = NewSpamd(o)
	d, err = s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte(forged)))
	if err != nil || len(d.Headers) != 1 || d.Headers[0].String() != "X-Spam-Scanned: no, message of 92 bytes over max_size 10" {
		t.Errorf("over max_size: %v %+v", err, d.Headers)
	}
	select {
	case <-got:
		t.Error("a message over max_size was sent to spamd")
	default:
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	s, _ = NewSpamd(spamdOptions(dead))
	_, err = s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte(forged)))
	var be *callout.BackendError
	if !errors.As(err, &be) || be.Backend != "spamd" {
		t.Errorf("spamd down: %v, want a *BackendError", err)
	}
}

// TestSpamdReal runs the service against a real spamd: GTUBE is
// rejected at kill, a clean message with a forged X-Spam-Status loses it,
// and with tag and tag2 set low the clean message gets the fields and the
// subject prefix; spamd stopped is a *BackendError.
func TestSpamdReal(t *testing.T) {
	port, stop := spamd(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	scan := func(o *mapping.Spamd, m *callout.Message) callout.Decision {
		t.Helper()
		s, err := NewSpamd(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.AdaptMessage(context.Background(), &callout.Tx{}, m)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := scan(spamdOptions(addr), sample(t, "gtube.eml")); d.Action != callout.ActionRefuse || d.Reply.String() != "550 5.7.1 Message rejected as spam" {
		t.Errorf("GTUBE: %v %q (%s)", d.Action, d.Reply.String(), d.Reason)
	}
	d := scan(spamdOptions(addr), callout.NewMessage([]byte(forged)))
	if d.Action != callout.ActionReplace || bytes.Contains(bytes.ToLower(all(t, d.Message)), []byte("x-spam")) {
		t.Errorf("forged fields: %v\n%s", d.Action, all(t, d.Message))
	}
	o := spamdOptions(addr)
	o.Tag, o.Tag2, o.Request = -100, -100, "REPORT"
	d = scan(o, callout.NewMessage([]byte(forged)))
	if d.Action != callout.ActionReplace || !bytes.Contains(all(t, d.Message), []byte("Subject: ***SPAM*** hello\r\n")) {
		t.Errorf("tag2: %v\n%s", d.Action, all(t, d.Message))
	}
	var names []string
	for _, f := range d.Headers {
		names = append(names, f.Name)
		if err := f.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if strings.Join(names, " ") != "X-Spam-Flag X-Spam-Score X-Spam-Status X-Spam-Report" && strings.Join(names, " ") != "X-Spam-Flag X-Spam-Score X-Spam-Level X-Spam-Status X-Spam-Report" {
		t.Errorf("fields %v", names)
	}
	o.Request = "HEADERS"
	d = scan(o, callout.NewMessage([]byte(forged)))
	names = nil
	for _, f := range d.Headers {
		names = append(names, f.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "X-Spam-Checker-Version") {
		t.Errorf("HEADERS: fields %v lack spamd's X-Spam-Checker-Version", names)
	}
	stop()
	s, _ := NewSpamd(spamdOptions(addr))
	_, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte(forged)))
	var be *callout.BackendError
	if !errors.As(err, &be) {
		t.Errorf("spamd stopped: %v, want a *BackendError", err)
	}
}

// TestSpamdFieldsBounded: spamd's report and the fields of its rewritten
// header are passed on up to 8 KiB each (Sendmail's MaxHeadersLength is
// 32 KiB for the whole header), cut at a fold.
func TestSpamdFieldsBounded(t *testing.T) {
	report := strings.Repeat(" 1.0 SOME_RULE          "+strings.Repeat("x", 60)+"\n", 400)
	for _, req := range []string{"REPORT", "HEADERS"} {
		body := report
		if req == "HEADERS" {
			body = "X-Spam-Report: " + strings.ReplaceAll(strings.TrimSpace(report), "\n", "\r\n\t") + "\r\nX-Spam-Checker-Version: SpamAssassin\r\n\r\n"
		}
		got := make(chan []byte, 1)
		addr := fakeSpamd(t, "SPAMD/1.1 0 EX_OK\r\nContent-length: "+strconv.Itoa(len(body))+"\r\nSpam: True ; 3.0 / 5.0\r\n\r\n"+body, got)
		o := spamdOptions(addr)
		o.Request = req
		s, _ := NewSpamd(o)
		d, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte(forged)))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range d.Headers {
			names = append(names, f.Name)
			if len(f.Value) > 8<<10 || f.Validate() != nil {
				t.Errorf("%s: %s of %d bytes (%v)", req, f.Name, len(f.Value), f.Validate())
			}
		}
		if !slices.Contains(names, "X-Spam-Report") {
			t.Errorf("%s: fields %v lack the report", req, names)
		}
	}
}
