package mapping

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false}, {"512B", 512, false}, {"10KB", 10000, false}, {"1KiB", 1024, false},
		{"3 MB", 3e6, false}, {"50MiB", 50 << 20, false}, {"2GB", 2e9, false}, {"1GiB", 1 << 30, false},
		{"", 0, true}, {"MiB", 0, true}, {"-1KB", 0, true}, {"1.5MB", 0, true}, {"1kb", 0, true}, {"1TB", 0, true},
	} {
		got, err := ParseSize(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
	for n, want := range map[int64]string{0: "0B", 1000: "1000B", 1024: "1KiB", 3 << 20: "3MiB", 5 << 30: "5GiB", 1<<20 + 1: "1048577B"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ocpsmtp.Reply
		err  bool
	}{
		{"550 5.1.1 No such user", ocpsmtp.Reply{Code: 550, Text: "5.1.1 No such user"}, false},
		{"451 4.3.0 Try later", ocpsmtp.Reply{Code: 451, Text: "4.3.0 Try later"}, false},
		{"550", ocpsmtp.Reply{Code: 550, Text: ""}, false},
		{"554 Go away", ocpsmtp.Reply{Code: 554, Text: "Go away"}, false},
		{"554 4.7.1 Go away", ocpsmtp.Reply{}, true},
		{"250 OK", ocpsmtp.Reply{}, true},
		{"55 x", ocpsmtp.Reply{}, true},
		{"5500 x", ocpsmtp.Reply{}, true},
		{"550-5.1.1 x", ocpsmtp.Reply{}, true},
	} {
		got, err := parseReply(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("parseReply(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if s := (ocpsmtp.Reply{Code: 550, Text: "5.1.1 x"}).String(); s != "550 5.1.1 x" {
		t.Errorf("Reply.String() = %q", s)
	}
}

func TestEditDistanceAndSuggest(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"adaptiv", "adaptive", 1}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d", tc.a, tc.b, got)
		}
	}
	known := map[string]int{"listen": 0, "timeouts": 0, "mta": 0}
	for k, want := range map[string]string{
		"lisen": ` (did you mean "listen"?)`, "Listen": ` (did you mean "listen"?)`, "listen_on": ` (did you mean "listen"?)`,
		"timeout": ` (did you mean "timeouts"?)`, "mt": ` (did you mean "mta"?)`, "zzzzzz": "", "m": "",
	} {
		if got := suggest(k, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", k, got, want)
		}
	}
}

// TestFormat checks the check output of a configuration using most
// features.
func TestFormat(t *testing.T) {
	c := mustLoad(t, fill(`[milter]
listen = ["unix:/run/opes.sock", "inet6:[::1]:8890"]
metrics_listen = "127.0.0.1:9187"
spool_dir = "/var/spool/opes-milter"
oversize = "skip"

[bypass]
header = true
allowed = ["urn:test:a"]

[services.a]
uri = "urn:test:a"
params = { mode = "strict" }

[servers.s]
addresses = ["127.0.0.1:1", "127.0.0.1:2"]
strategy = "round-robin"

[[routes]]
name = "submission"
profile = "sender"
chain = "c"
adaptive = ["MAIL", "SINGLEHEADERS"]
header_list = ["From", "Subject"]
match = { daemon_name = ["submission"], authenticated = true, sender_domain = ["example.com"] }

[[routes]]
name = "inbound"
chain = "c"
informative = ["IP"]
adaptive = ["RAWDATA", "RCPT"]

[[skip]]
name = "monitoring"
client_network = ["192.0.2.10"]
non_smtp = false
`)+"[callout]\nlisten = [\"127.0.0.1:8891\"]\n"+svc("disclaimer")+"text = \"x\"\n")
	var b bytes.Buffer
	if err := c.Format(&b); err != nil {
		t.Fatal(err)
	}
	want := `configuration t.toml is valid

opes-milter
  listen        unix:/run/opes.sock inet6:[::1]:8890
  limits        500 sessions, 1000 transactions in flight
  messages      up to 50MiB adapted (larger: skip); spooled to /var/spool/opes-milter above 1MiB
  deadlines     connect 5s, mail 8s, rcpt 8s, end of message 4m0s (progress every 5s)
  MTA limits    10s per command, 5m0s for the content
  logs          info, text
  CPUs          Go code on half of those available (max_procs = 0)
  metrics       127.0.0.1:9187
  trace         OPES-System urn:test:system; privacy policy none; OPES-Via on
  bypass        OPES-Bypass may skip urn:test:a

route 1 "submission"
  when          daemon name submission, and authenticated, and sender domain example.com
  profile       sender (http://iana.org/opes/ocp/SMTP/sender)
  chain         c
  services      1. a <urn:test:a> {mode="strict"}
  servers       s: round-robin 127.0.0.1:1 127.0.0.1:2, 2 connections each, plain TCP
  adaptive      MAIL SINGLEHEADERS
  informative   none
  header list   From, Subject
  on failure    connect tempfail, timeout tempfail, protocol tempfail, server tempfail
  service group its own, with its own parts: route 2 "inbound" uses chain c with another offer (one group per chain and offer)

route 2 "inbound"
  when          any connection
  profile       receiver (http://iana.org/opes/ocp/SMTP/receiver)
  chain         c
  services      1. a <urn:test:a> {mode="strict"}
  servers       s: round-robin 127.0.0.1:1 127.0.0.1:2, 2 connections each, plain TCP
  adaptive      RCPT RAWDATA
  informative   IP
  on failure    connect tempfail, timeout tempfail, protocol tempfail, server tempfail
  service group its own, with its own parts: route 1 "submission" uses chain c with another offer (one group per chain and offer)

skip 1 "monitoring"
  when          client in 192.0.2.10/32, and received by SMTP

opes-callout
  listen        127.0.0.1:8891 (plain TCP)
  limits        100 connections; idle 5m0s, handshake 10s
  logs          info, text
  CPUs          Go code on half of those available (max_procs = 0)
  service       s <urn:s> disclaimer
`
	if got := b.String(); got != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, bytes.ErrTooLarge
}

func TestFormatWriteError(t *testing.T) {
	c := mustLoad(t, fill(""))
	w := &failWriter{}
	if err := c.Format(w); err != bytes.ErrTooLarge || w.n != 1 {
		t.Errorf("Format = %v after %d writes", err, w.n)
	}
}

func TestCheckMissingFile(t *testing.T) {
	var b bytes.Buffer
	err := Check(&b, "/nonexistent/opes-milter.toml")
	if err == nil || !strings.Contains(err.Error(), "no such file") || b.Len() != 0 {
		t.Errorf("Check = %v, printed %q", err, b.String())
	}
}

func TestLoadFileTooLarge(t *testing.T) {
	path := t.TempDir() + "/big.toml"
	if err := os.WriteFile(path, []byte(strings.Repeat("#", maxFileSize+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if want := path + ": larger than 4194304 bytes"; err == nil || err.Error() != want {
		t.Errorf("LoadFile = %v, want %s", err, want)
	}
}

func TestFormatOneSide(t *testing.T) {
	for doc, want := range map[string]string{
		"[callout]\n": "\nopes-milter: not configured (no [[routes]])\n",
		fill(""):      "\nopes-callout: not configured (no [callout])\n",
	} {
		var b bytes.Buffer
		if err := mustLoad(t, doc).Format(&b); err != nil || !strings.Contains(b.String(), want) {
			t.Errorf("Format = %v:\n%s\nwant it to contain %q", err, b.String(), want)
		}
	}
}
