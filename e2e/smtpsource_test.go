package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSMTPSourceDriver checks the smtp-source driver against what
// smtp-source really writes and what a real Postfix really answers: a
// temporary and a permanent refusal at RCPT (check_recipient_access), a
// temporary one at DATA and at the end of data (check_sender_access in
// smtpd_data_restrictions and smtpd_end_of_data_restrictions), a permanent
// one at the end of data (header_checks REJECT), a paced run, a -F
// message, and a transport failure, which leaves messages without an
// outcome. The counts come from smtp-source's output; the tap must agree,
// and each accepted message is found at the sink by its queue id.
func TestSMTPSourceDriver(t *testing.T) {
	pf := StartPostfix(t, PostfixOptions{
		Files: map[string]string{"header_checks": "/^Subject: .*reject-me/ REJECT go away\n"},
		Extra: map[string]string{
			"header_checks":                  "regexp:$config_directory/header_checks",
			"smtpd_data_restrictions":        "check_sender_access inline:{ {data@example.org = 451 4.3.0 not now} }",
			"smtpd_end_of_data_restrictions": "check_sender_access inline:{ {eod@example.org = 452 4.3.1 later} }",
			"smtpd_recipient_restrictions": "check_recipient_access inline:{ {temp@example.com = 450 4.2.0 try later}, " +
				"{perm@example.com = 550 5.1.1 no such user} }, permit_mynetworks, reject",
		},
	})
	cases := []struct {
		name                     string
		o                        SourceOptions
		accepted, temp, perm     int
		refused                  string // a key of Refused
		delivered, checkDelivery bool
	}{
		{name: "accepted", o: SourceOptions{Messages: 7, Sessions: 3, Subject: "driver accepted", Size: 3000}, accepted: 7, delivered: true},
		{name: "4xx at RCPT", o: SourceOptions{Messages: 4, Sessions: 2, Subject: "driver temp rcpt", To: "temp@example.com"}, temp: 4, refused: "450 at recipient"},
		{name: "5xx at RCPT", o: SourceOptions{Messages: 3, Sessions: 3, Subject: "driver perm rcpt", To: "perm@example.com"}, perm: 3, refused: "550 at recipient"},
		{name: "4xx at DATA", o: SourceOptions{Messages: 3, Sessions: 2, Subject: "driver temp data", From: "data@example.org"}, temp: 3, refused: "451 at data"},
		{name: "4xx at end of data", o: SourceOptions{Messages: 4, Sessions: 2, Subject: "driver temp eod", From: "eod@example.org"}, temp: 4, refused: "452 at end of data"},
		{name: "5xx at end of data", o: SourceOptions{Messages: 2, Sessions: 1, Subject: "driver reject-me"}, perm: 2, refused: "550 at end of data"},
		{name: "paced", o: SourceOptions{Messages: 12, Sessions: 6, Spread: 3, PerSecond: true, Subject: "driver paced"}, accepted: 12, delivered: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Addr = pf.SMTPAddr
			rep := RunSource(t, tc.o)
			t.Logf("%v", rep)
			rep.Check(t)
			if rep.Accepted != tc.accepted || rep.Temp != tc.temp || rep.Perm != tc.perm {
				t.Errorf("%d accepted, %d 4xx, %d 5xx; want %d, %d, %d\n%s", rep.Accepted, rep.Temp, rep.Perm, tc.accepted, tc.temp, tc.perm, rep.Output)
			}
			if tc.refused != "" && rep.Refused[tc.refused] != tc.temp+tc.perm {
				t.Errorf("refusals %v, want all %q", rep.Refused, tc.refused)
			}
			for _, s := range rep.Sessions {
				if (tc.temp > 0 && s.Refusal/100 != 4) || (tc.perm > 0 && s.Refusal/100 != 5) || (tc.accepted > 0 && s.Refusal != 0) {
					t.Errorf("the tap saw a session refused with %d", s.Refusal)
				}
			}
			if tc.delivered {
				got := rep.Delivered(t, pf.Sink, scenarioTimeout)
				if len(got) != tc.accepted {
					t.Errorf("%d delivered, want %d", len(got), tc.accepted)
				}
			}
			if tc.o.PerSecond {
				// 6 sessions of one message a second, in 3 processes a
				// third of a second apart: 12 messages take about 2 s.
				if rep.Elapsed < 1500*time.Millisecond {
					t.Errorf("a paced run of 12 messages at about 6 a second took %v", rep.Elapsed)
				}
			}
		})
	}
	t.Run("-F file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "msg")
		writeFile(t, path, "From: <load@example.org>\nTo: <rcpt@example.com>\nSubject: driver file\n\n.a line with a dot\nend\n", 0o644)
		rep := RunSource(t, SourceOptions{Addr: pf.SMTPAddr, Messages: 2, Sessions: 2, File: path})
		got := rep.Delivered(t, pf.Sink, scenarioTimeout)
		if rep.Accepted != 2 || len(got) != 2 {
			t.Fatalf("%v: %d delivered", rep, len(got))
		}
		for _, m := range got {
			if !strings.HasPrefix(string(m.Body), ".a line with a dot\nend\n") {
				t.Errorf("delivered body %q", m.Body)
			}
		}
	})
	t.Run("transport failure", func(t *testing.T) {
		// A server that greets and then hangs up: smtp-source ends with a
		// fatal error, and the driver reports the messages as lost.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("220 hangs up\r\n"))
				_ = c.Close()
			}
		}()
		rep := RunSource(t, SourceOptions{Addr: ln.Addr().String(), Messages: 3, Subject: "driver lost", Timeout: 20 * time.Second})
		t.Logf("%v", rep)
		if rep.Err == nil || len(rep.Fatal) == 0 || rep.Lost() != 3 {
			t.Errorf("want a fatal error and 3 lost messages: %v\n%s", rep, rep.Output)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		// A server that never greets: smtp-source would wait 300 s; the
		// run is killed at its timeout.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		start := time.Now()
		rep := RunSource(t, SourceOptions{Addr: ln.Addr().String(), Messages: 2, Sessions: 2, Subject: "driver silent", Timeout: time.Second})
		t.Logf("%v", rep)
		if rep.Err == nil || rep.Lost() != 2 || time.Since(start) > 5*time.Second {
			t.Errorf("want smtp-source killed after 1 s with 2 lost messages: %v after %v", rep, time.Since(start))
		}
	})
}

// TestParseSourceOutput: smtp-source's output as captured from real runs
// (a multi-line 421 reply to MAIL comes as one line with "?" for the line
// break, and smtp-source then closes the session; a lost connection is
// fatal), counted.
func TestParseSourceOutput(t *testing.T) {
	stderr := "/usr/sbin/smtp-source: warning: sender rejected: 421 4.3.2 going?4.3.2 down\n" +
		"/usr/sbin/smtp-source: warning: sender rejected: 451 4.3.2 multi?4.3.2 line\n" +
		"smtp-source: warning: HELO rejected: 421 4.3.2 shutting down\n" +
		"smtp-source: warning: HELO rejected: 501 5.5.2 bad name\n" +
		"smtp-source: warning: recipient rejected: 450 4.2.0 try later\n" +
		"smtp-source: warning: end of data rejected: 451 4.7.1 Service unavailable - try again later\n" +
		"smtp-source: warning: rset rejected: 421 4.4.2 timeout\n" +
		"/usr/sbin/smtp-source: fatal: lost connection while sending sender\n"
	c := parseSourceOutput("1\r2\r3\r4\r\n", stderr)
	want := map[string]int{"421 at sender": 1, "451 at sender": 1, "421 at HELO": 1, "450 at recipient": 1, "451 at end of data": 1}
	if c.data != 4 || c.eodRefused != 1 || c.temp != 5 || c.perm != 0 || len(c.fatal) != 1 || len(c.other) != 2 {
		t.Errorf("%+v", c)
	}
	for k, v := range want {
		if c.refused[k] != v {
			t.Errorf("refused[%q] = %d, want %d (%v)", k, c.refused[k], v, c.refused)
		}
	}
	if c := parseSourceOutput("\n", ""); c.data != 0 || len(c.refused) != 0 {
		t.Errorf("no output: %+v", c)
	}
}
