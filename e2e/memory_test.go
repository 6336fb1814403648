package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/emersion/go-message/textproto"
)

// vmHWM returns a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// informativeBody makes RAWDATA informative and the chain
// recipient-policy + header-tag only, so the body is streamed and nothing
// keeps it.
func informativeBody(cfg string) string {
	cfg = strings.Replace(cfg, `adaptive = ["RCPT", "RAWDATA"]`, `adaptive = ["RCPT"]`, 1)
	cfg = strings.Replace(cfg, `informative = ["IP", "HELO", "MAIL"]`, `informative = ["IP", "HELO", "MAIL", "RAWDATA"]`, 1)
	cfg = strings.Replace(cfg, `services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter"]`, `services = ["recipient-policy", "header-tag"]`, 1)
	cfg = strings.Replace(cfg, `max_message_size = "50MiB"`, `max_message_size = "200MiB"`, 1)
	return cfg
}

// TestLargeMessageInformativeBodyMemory sends a 50 MiB message whose body
// is informative through opes-milter (driven by go-milter's client, as an
// MTA does) and checks the daemon's peak RSS stays under 48 MiB.
func TestLargeMessageInformativeBodyMemory(t *testing.T) {
	op := StartOpes(t, OpesOptions{Edit: informativeBody})
	cl := gomilter.NewClient("tcp", op.MilterAddr, gomilter.WithReadTimeout(120*time.Second), gomilter.WithWriteTimeout(120*time.Second))
	s, err := cl.Session(gomilter.NewMacroBag())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must := func(a *gomilter.Action, err error) {
		t.Helper()
		if err != nil || a.StopProcessing() {
			t.Fatalf("%+v %v\nopes-milter log:\n%s", a, err, op.Milter.Output())
		}
	}
	must(s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.1"))
	must(s.Helo("client.example"))
	must(s.Mail("a@example.org", ""))
	must(s.Rcpt("b@example.com", ""))
	var h textproto.Header
	h.Add("Subject", "50 MiB")
	must(s.Header(h))
	line := bytes.Repeat([]byte("0123456789abcdef"), 4)
	line = append(line[:62], '\r', '\n')
	chunk := bytes.Repeat(line, 65535/64)
	const total = 50 << 20
	start := time.Now()
	for sent := 0; sent < total; sent += len(chunk) {
		must(s.BodyChunk(chunk))
	}
	mods, act, err := s.End()
	if err != nil || act.Type != gomilter.ActionAccept {
		t.Fatalf("end: %+v %v\n%s", act, err, op.Milter.Output())
	}
	found := false
	for _, m := range mods {
		if m.HeaderName == "OPES-System" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no trace: %+v", mods)
	}
	hwm := vmHWM(t, op.Milter.Pid())
	t.Logf("50 MiB informative body in %v; opes-milter VmHWM %.1f MiB", time.Since(start).Round(time.Millisecond), float64(hwm)/(1<<20))
	if hwm >= 48<<20 {
		t.Fatalf("opes-milter peak RSS %.1f MiB, want < 48 MiB", float64(hwm)/(1<<20))
	}
}
