package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
)

// TestOpsMetrics checks opes-milter's Prometheus endpoint and /healthz on
// milter.metrics_listen while messages pass, fail and trip the circuit
// breaker: messages by route, verdict and status, callout latency
// histograms, failures by class and action, breaker state and trips, OCP
// connections, sessions and transactions in flight, overload refusals, and
// the Go and process collectors.
func TestOpsMetrics(t *testing.T) {
	metrics := FreeAddr(t)
	op := startOpesEdited(t, false, metricsAt(metrics),
		configEdit{`failure_limit = 5`, `failure_limit = 2`})
	server := `server="` + op.CalloutAddr + `"`

	resp, err := http.Get("http://" + metrics + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz: %s %q", resp.Status, body)
	}

	s := milterClient(t, op.MilterAddr)
	// CONNECT has no reply: the session exists once opes-milter read it.
	if !Eventually(5*time.Second, func() bool { return scrape(t, metrics).Sum("opes_milter_milter_sessions") == 1 }) {
		t.Errorf("milter_sessions = %v with one MTA session open", scrape(t, metrics).Sum("opes_milter_milter_sessions"))
	}
	if o := sendViaMilter(t, s, "metrics\r\n"); o.final == nil || o.final.Type != gomilter.ActionAccept {
		t.Fatalf("message: %v", o)
	}
	m := scrape(t, metrics)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"opes_milter_messages_total", []string{`route="inbound"`, `verdict="accept"`, `status="adapted"`}, 1},
		{"opes_milter_callout_duration_seconds_count", []string{`route="inbound"`}, 1},
		{"opes_milter_callout_duration_seconds_bucket", []string{`route="inbound"`, `le="+Inf"`}, 1},
		{"opes_milter_ocp_connections", nil, 1},
		{"opes_milter_ocp_transactions_in_flight", nil, 0},
		{"opes_milter_adaptation_failures_total", nil, 0},
	} {
		if got := m.Sum(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "opes_milter_callout_duration_seconds_sum"} {
		if !m.Has(name) {
			t.Errorf("no %s", name)
		}
	}

	// A transaction in flight: the session stops after RCPT.
	if act, err := s.Mail("<a@example.org>", ""); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("MAIL: %+v %v", act, err)
	}
	if act, err := s.Rcpt("<b@example.com>", ""); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("RCPT: %+v %v", act, err)
	}
	if got := scrape(t, metrics).Sum("opes_milter_ocp_transactions_in_flight"); got != 1 {
		t.Errorf("transactions in flight = %v, want 1", got)
	}
	if err := s.Abort(nil); err != nil {
		t.Fatal(err)
	}

	// The callout server goes away: failures by class, then the breaker.
	if err := op.Callout.Stop(); err != nil {
		t.Fatal(err)
	}
	waitOCPConnections(t, metrics, 0)
	for range 3 {
		if o := sendViaMilter(t, s, "x\r\n"); !o.tempfailed() {
			t.Fatalf("with the callout server down: %v", o)
		}
	}
	m = scrape(t, metrics)
	if got := m.Sum("opes_milter_adaptation_failures_total", `route="inbound"`, `class="connect"`, `action="tempfail"`); got != 3 {
		t.Errorf("connect failures = %v, want 3", got)
	}
	if m.Sum("opes_milter_circuit_breaker_open", server) != 1 || m.Sum("opes_milter_circuit_breaker_trips_total", server) != 1 {
		t.Errorf("breaker open %v, trips %v; want 1, 1", m.Sum("opes_milter_circuit_breaker_open", server),
			m.Sum("opes_milter_circuit_breaker_trips_total", server))
	}

	op.StartCallout(t, "")
	if !Eventually(10*time.Second, func() bool {
		o := sendViaMilter(t, s, "back\r\n")
		return o.final != nil && o.final.Type == gomilter.ActionAccept
	}) {
		t.Fatalf("no message passes after the callout server came back:\n%s", op.Milter.Output())
	}
	m = scrape(t, metrics)
	if got := m.Sum("opes_milter_circuit_breaker_open", server); got != 0 {
		t.Errorf("breaker still open after the revival: %v", got)
	}
	if got := m.Sum("opes_milter_messages_total", `route="inbound"`, `verdict="accept"`, `status="adapted"`); got < 2 {
		t.Errorf("accepted messages = %v, want at least 2", got)
	}
}

// TestOpsReloadUnderLoad sends a steady load through Postfix while
// opes-milter reloads its configuration with SIGHUP several times (each
// reload changes the trace's system URI; one file is invalid and must be
// refused), with transactions in flight at every reload. No session is
// dropped: every message is accepted, delivered once and adapted, traced
// by the configuration that was current for it, and the last good
// configuration is in force afterwards.
func TestOpsReloadUnderLoad(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "slow")
	setSlow(t, flag, 200*time.Millisecond)
	metrics := FreeAddr(t)
	op := startOpesEdited(t, false, append(slowService(flag), metricsAt(metrics))...)
	pf := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()})
	base, err := os.ReadFile(op.Config)
	if err != nil {
		t.Fatal(err)
	}
	uri := func(n int) string { return fmt.Sprintf("http://opes.example.net/reload-%d", n) }
	reloaded := func() int { return strings.Count(op.Milter.Output(), "configuration reloaded") }
	const reloads = 6
	// An SMTP session opened before the reloads sends its message after
	// them: its milter session spans every reload.
	held := openSMTP(t, pf.SMTPAddr)
	done := make(chan LoadReport, 1)
	go func() {
		done <- RunLoad(context.Background(), LoadOptions{Addr: pf.SMTPAddr, Prefix: "hup", Sessions: 6, Messages: 120, Rate: 30})
	}()
	inflight := 0.0
	for n := 1; n <= reloads; n++ {
		time.Sleep(500 * time.Millisecond)
		cfg := strings.Replace(string(base), `system_uri = "`+systemURI+`"`, `system_uri = "`+uri(n)+`"`, 1)
		if n == reloads/2 {
			cfg = strings.Replace(cfg, "[milter]", "[milter]\nno_such_key = 1", 1) // refused
		}
		if err := os.WriteFile(op.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		inflight += scrape(t, metrics).Sum("opes_milter_ocp_transactions_in_flight")
		before := reloaded()
		if err := syscall.Kill(op.Milter.Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if n != reloads/2 && !Eventually(5*time.Second, func() bool { return reloaded() > before }) {
			t.Fatalf("reload %d not done:\n%s", n, op.Milter.Output())
		}
	}
	rep := <-done
	heldMail := DefaultMail("hupheld", 1)
	heldRep := LoadReport{Results: []SMTPResult{{ID: heldMail.ID, Accepted: true}}}
	if err := sendOn(held, heldMail); err != nil {
		t.Errorf("a session opened before the reloads cannot send after them: %v", err)
		heldRep = LoadReport{}
	}
	t.Logf("%v; %d reloads with %.0f transactions in flight in total at the signals", rep, reloads, inflight)
	if inflight == 0 {
		t.Errorf("no transaction was in flight at any reload: the test proves nothing")
	}
	if a, _, _ := rep.Counts(); a != len(rep.Results) {
		t.Errorf("messages refused or lost across the reloads: %v %v", rep, rep.Codes())
	}
	if !strings.Contains(op.Milter.Output(), "reload failed; keeping the running configuration") {
		t.Errorf("the invalid configuration was not refused:\n%s", op.Milter.Output())
	}
	traced := map[string]int{}
	valid := regexp.MustCompile(`^http://opes\.example\.net/(opes-milter|reload-[0-9]+)` + regexp.QuoteMeta(privacyParam) + `$`)
	for id, m := range rep.Delivered(t, pf.Sink, "hup", 30*time.Second) {
		sys := m.Header.Get("OPES-System")
		traced[sys]++
		if !valid.MatchString(sys) || m.Header.Get("X-OPES-Tag") == "" || !strings.Contains(string(m.Body), disclaimerText) {
			t.Errorf("%s not adapted as configured (OPES-System %q):\n%s", id, sys, m.Raw)
		}
	}
	t.Logf("trace URIs seen: %v", traced)
	if traced[uri(reloads/2)+privacyParam] != 0 {
		t.Errorf("the refused configuration was used for %d messages", traced[uri(reloads/2)+privacyParam])
	}
	heldRep.Delivered(t, pf.Sink, "hupheld", 30*time.Second)
	after := RunLoad(context.Background(), LoadOptions{Addr: pf.SMTPAddr, Prefix: "hupafter", Messages: 1})
	for _, m := range after.Delivered(t, pf.Sink, "hupafter", 30*time.Second) {
		if got := m.Header.Get("OPES-System"); got != uri(reloads)+privacyParam {
			t.Errorf("after the reloads OPES-System = %q, want %q", got, uri(reloads)+privacyParam)
		}
	}
}

// TestOpsUnixSocket has opes-milter listen on a unix socket with a
// configured mode and owner, and Postfix (smtpd runs as user postfix) send
// a message through it.
func TestOpsUnixSocket(t *testing.T) {
	owner, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("user postfix: %v (%s)", err, InstallHint)
	}
	group, err := user.LookupGroup("postdrop")
	if err != nil {
		t.Fatalf("group postdrop: %v (%s)", err, InstallHint)
	}
	sock := filepath.Join(InstanceDir(t, "sock"), "milter.sock")
	listen := regexp.MustCompile(`(?m)^listen = \["(inet:127\.0\.0\.1:\d+)"\]$`)
	op := StartOpes(t, OpesOptions{Edit: func(cfg string) string {
		if !listen.MatchString(cfg) {
			t.Fatal("no [milter] listen line")
		}
		cfg = listen.ReplaceAllString(cfg, `listen = ["$1", "unix:`+sock+`"]`)
		return applyEdits(t, cfg, []configEdit{
			{`socket_mode = "0660"`, `socket_mode = "0620"`},
			{`socket_owner = ""`, `socket_owner = "postfix:postdrop"`},
		})
	}})
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o620 {
		t.Errorf("%s: mode %v, want a socket with 0620", sock, fi.Mode())
	}
	if strconv.Itoa(int(st.Uid)) != owner.Uid || strconv.Itoa(int(st.Gid)) != group.Gid {
		t.Errorf("%s: owner %d:%d, want postfix:postdrop (%s:%s)", sock, st.Uid, st.Gid, owner.Uid, group.Gid)
	}
	pf := StartPostfix(t, PostfixOptions{Milter: "unix:" + sock})
	rep := RunLoad(context.Background(), LoadOptions{Addr: pf.SMTPAddr, Prefix: "unix", Messages: 2})
	for id, m := range rep.Delivered(t, pf.Sink, "unix", 30*time.Second) {
		if a := adaptation(m); a != "adapted" {
			t.Errorf("%s through the unix socket: %s", id, a)
		}
	}
	if a, _, _ := rep.Counts(); a != 2 {
		t.Fatalf("through the unix socket: %v\n%s\n%s", rep, pf.Log(), op.Milter.Output())
	}
}

// openSMTP opens an SMTP session to addr through EHLO; it is closed when
// the test ends.
func openSMTP(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(2 * time.Minute))
	c, err := smtp.NewClient(nc, hostOf(addr))
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("held.client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// sendOn sends m on an open SMTP session and quits.
func sendOn(c *smtp.Client, m Mail) error {
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT: %w", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := io.WriteString(w, m.Text()); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return c.Quit()
}
