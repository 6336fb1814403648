package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFillTemplate(t *testing.T) {
	tests := []struct {
		name        string
		text        string
		vars        map[string]string
		want        string
		wantMissing []string
	}{
		{"fills", "a = @A@\nb = @B_2@ x\n", map[string]string{"A": "1", "B_2": "two"}, "a = 1\nb = two x\n", nil},
		{"missing", "a = @A@ @C@ @A@\n", map[string]string{}, "a = @A@ @C@ @A@\n", []string{"@A@", "@C@"}},
		{"comment kept", "# set @A@ here\na = @A@\n", map[string]string{"A": "1"}, "# set @A@ here\na = 1\n", nil},
		{"m4 comment kept", "dnl # @A@\n  # @B@\nx(@A@)\n", map[string]string{"A": "1"}, "dnl # @A@\n  # @B@\nx(1)\n", nil},
		{"not a placeholder", "user@example.com @lower@ @\n", nil, "user@example.com @lower@ @\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, missing := fillTemplate(tt.text, tt.vars)
			if got != tt.want || !slices.Equal(missing, tt.wantMissing) {
				t.Errorf("fillTemplate = %q, missing %v; want %q, %v", got, missing, tt.want, tt.wantMissing)
			}
		})
	}
}

// TestContribSnippetsRender checks that the harness supplies every placeholder the
// contrib snippets use, and that the rendered configurations carry the settings the
// snippets promise administrators.
func TestContribSnippetsRender(t *testing.T) {
	dir := t.TempDir()
	main := postfixMainCF(t, dir, "[127.0.0.1]:2525", PostfixOptions{
		Milter: "inet:127.0.0.1:8890", Extra: map[string]string{"smtpd_banner": "x", "biff": "yes"},
	})
	master := postfixMasterCF(t, "127.0.0.1:2526", "127.0.0.1:2527")
	mc := sendmailMC(t, dir, "mx.sm.test", "127.0.0.1:2528", "127.0.0.1:2525", SendmailOptions{Milter: "inet:8890@127.0.0.1"})
	for _, tt := range []struct{ name, text, want string }{
		{"main smtpd_milters", main, "\nsmtpd_milters = inet:127.0.0.1:8890\n"},
		{"main default action", main, "\nmilter_default_action = tempfail\n"},
		{"main protocol", main, "\nmilter_protocol = 6\n"},
		{"main size", main, "\nmessage_size_limit = 67108864\n"},
		{"main non-smtpd off", main, "\nnon_smtpd_milters =\n"},
		{"main non-smtpd overridden", main, "\n#e2e overridden below# non_smtpd_milters = inet:127.0.0.1:8890\n"},
		{"main extra sorted last", main, "\nbiff = yes\nsmtpd_banner = x\n"},
		{"main queue", main, "\nqueue_directory = " + dir + "/queue\n"},
		{"master smtp", master, "\n127.0.0.1:2526        inet  n       -       n  "},
		{"master submission", master, "\n  -o milter_macro_daemon_name=ORIGINATING\n"},
		{"mc milter", mc, "INPUT_MAIL_FILTER(`opes-milter', `S=inet:8890@127.0.0.1, F=T, T=C:5s;S:10s;R:10s;E:5m')dnl\n"},
		{"mc relay", mc, "define(`ESMTP_MAILER_ARGS', `TCP $h 2525')dnl\n"},
		{"mc daemon", mc, "DAEMON_OPTIONS(`Port=2528, Addr=127.0.0.1, Name=MTA')dnl\n"},
		{"mc mailer last", mc, "MAILER(`smtp')dnl\n"},
	} {
		if !strings.Contains(tt.text, tt.want) {
			t.Errorf("%s: rendered text lacks %q:\n%s", tt.name, tt.want, tt.text)
		}
	}
	leftover := regexp.MustCompile(`(?m)^[^#\n]*@[A-Z][A-Z0-9_]*@`)
	for name, text := range map[string]string{"main.cf": main, "master.cf": master} {
		if m := leftover.FindString(text); m != "" {
			t.Errorf("%s keeps a placeholder: %q", name, m)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(mc), "MAILER(`smtp')dnl") {
		t.Errorf("sendmail .mc must end with the MAILER line:\n%s", mc)
	}
}

func TestLastSettingWins(t *testing.T) {
	in := "# a = comment\na = 1\nb = 2\n  continued\n\nc = 3\na = 4\nb =\n"
	want := "# a = comment\n#e2e overridden below# a = 1\n#e2e overridden below# b = 2\n#e2e overridden below#   continued\n\nc = 3\na = 4\nb =\n"
	if got := lastSettingWins(in); got != want {
		t.Errorf("lastSettingWins:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseSinkFile(t *testing.T) {
	raw := "X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: client\n" +
		"X-Mail-Args: <a@example.org> SIZE=100\nX-Rcpt-Args: <b@example.com> ORCPT=rfc822;b@example.com\n" +
		"X-Rcpt-Args: <c@example.com>\n" +
		"Received: from client ([127.0.0.1])\n\tby smtp-sink (smtp-sink) with ESMTP id 1;\n\tSat, 28 Nov 2026 23:40:57 +0000 (UTC)\n" +
		"Subject: t\nX-Harness: ok\n\nline 1\n\nline 3\n\n"
	m, err := ParseSinkFile([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.MailFrom != "a@example.org" || !slices.Equal(m.Rcpts, []string{"b@example.com", "c@example.com"}) {
		t.Errorf("envelope = %q %v", m.MailFrom, m.Rcpts)
	}
	if got := m.Header.Get("X-Harness"); got != "ok" {
		t.Errorf("X-Harness = %q", got)
	}
	if want := "Subject: t\nX-Harness: ok\n\nline 1\n\nline 3\n"; string(m.Raw) != want {
		t.Errorf("Raw = %q, want %q", m.Raw, want)
	}
	if want := "line 1\n\nline 3\n"; string(m.Body) != want {
		t.Errorf("Body = %q, want %q", m.Body, want)
	}
	if _, err := ParseSinkFile([]byte("X-Client-Addr: 127.0.0.1\n")); err == nil {
		t.Error("a file without smtp-sink's Received header parsed")
	}
}

func TestListening(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if !Listening(addr) {
		t.Errorf("Listening(%s) = false for an open listener", addr)
	}
	ln.Close()
	if Listening(addr) {
		t.Errorf("Listening(%s) = true after Close", addr)
	}
}

// TestProcessCleanup checks that Stop ends a whole process group and that an
// instance directory's cleanup finds a process that escaped it.
func TestProcessCleanup(t *testing.T) {
	var (
		dir     string
		escaped int
	)
	t.Run("run", func(t *testing.T) {
		dir = InstanceDir(t, "proc")
		marker := filepath.Join(dir, "ready")
		// The shell starts a child in the group and a grandchild in its own session,
		// both working in dir.
		p := Command{
			Name: "sh",
			Argv: []string{"sh", "-c", "sleep 60 & setsid sleep 61 >/dev/null 2>&1 & touch ready; wait"},
			Dir:  dir,
			Ready: func() bool {
				_, err := os.Stat(marker)
				return err == nil
			},
		}.Start(t)
		if err := p.Stop(); err != nil {
			t.Errorf("Stop = %v", err)
		}
		escaped = len(processesIn(dir))
	})
	if escaped != 1 {
		t.Errorf("%d processes survived Stop, want 1 (the setsid one)", escaped)
	}
	if n := len(processesIn(dir)); n != 0 {
		t.Errorf("%d processes survived the instance cleanup", n)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("instance dir %s still there: %v", dir, err)
	}
}

// TestSweepStale checks that an instance directory whose owner died is swept with
// the process working in it, and that a live owner's directory is kept.
func TestSweepStale(t *testing.T) {
	stale, err := os.MkdirTemp("", "opes-e2e-stale-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(stale) })
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(stale, ownerFile), fmt.Sprintf("%d 1\n", dead.Process.Pid), 0o644)
	orphan := exec.Command("sleep", "60")
	orphan.Dir = stale
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- orphan.Wait() }()
	t.Cleanup(func() { _ = orphan.Process.Kill() })

	live := InstanceDir(t, "live")
	swept := SweepStale()
	if !slices.Contains(swept, "removed "+stale) {
		t.Errorf("SweepStale = %q, want it to remove %s", swept, stale)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Error("the process in the stale directory survived")
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("SweepStale removed a live owner's directory: %v", err)
	}
}
