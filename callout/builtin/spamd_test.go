package builtin

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// spamd runs SpamAssassin's daemon on a free loopback port for the test
// and returns the port and a function that stops it. It fails the test
// (never skips it) when spamd is not installed: Debian packages spamd and
// spamc.
func spamd(t *testing.T) (port int, stop func()) {
	t.Helper()
	bin := "/usr/sbin/spamd"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("spamd"); err != nil {
			t.Fatal("spamd is not installed (apt-get install spamd spamc)")
		}
	}
	if _, err := exec.LookPath("spamc"); err != nil {
		t.Fatal("spamc is not installed (apt-get install spamc)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	args := []string{"-L", "-x", "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-s", "stderr",
		"--pidfile", filepath.Join(dir, "spamd.pid"), "-m", "2"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	cmd := exec.Command(bin, args...)
	var log bytes.Buffer
	cmd.Stderr = &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if exec.Command("spamc", "-d", "127.0.0.1", "-p", strconv.Itoa(port), "-K").Run() == nil {
			return port, stop
		}
		select {
		case <-exited:
			t.Fatalf("spamd exited:\n%s", log.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("spamd did not answer within 60s:\n%s", log.String())
		}
	}
}

// TestCommandSpamAssassin plugs a real scanner into the command service:
// spamd on loopback, "spamc -x -E" as the command. GTUBE is rejected, a
// clean message passes (with SpamAssassin's header fields added), and with
// spamd stopped the message gets the temporary failure, not a pass.
func TestCommandSpamAssassin(t *testing.T) {
	port, stop := spamd(t)
	argv := []string{"spamc", "-x", "-E", "-d", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "20"}
	svc, err := NewCommand(&mapping.Command{
		Argv:      argv,
		Timeout:   30 * time.Second,
		ExitCodes: map[int]string{0: CommandHeaders, 1: CommandReject},
		Default:   CommandTempFail,
		Reply:     ocpsmtp.Reply{Code: 550, Text: "5.7.1 Message rejected as spam"},
	})
	if err != nil {
		t.Fatal(err)
	}
	scan := func(file string) callout.Decision {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		d, err := svc.AdaptMessage(ctx, &callout.Tx{}, sample(t, file))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	if d := scan("gtube.eml"); d.Action != callout.ActionRefuse || d.Reply.String() != "550 5.7.1 Message rejected as spam" {
		t.Errorf("GTUBE: %v %q (%s), want the 550 rejection", d.Action, d.Reply.String(), d.Reason)
	}
	d := scan("plain.eml")
	if d.Action != callout.ActionKeep {
		t.Fatalf("clean message: %v %q (%s), want pass", d.Action, d.Reply.String(), d.Reason)
	}
	var names []string
	for _, f := range d.Headers {
		names = append(names, f.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "X-Spam-Status") {
		t.Errorf("clean message: added fields %q lack X-Spam-Status", names)
	}
	for _, f := range d.Headers {
		if strings.HasPrefix(f.Value, "Yes") {
			t.Errorf("clean message marked as spam: %s", f)
		}
	}

	stop()
	if d := scan("plain.eml"); d.Action != callout.ActionRefuse || !d.Reply.Temporary() {
		t.Errorf("spamd stopped: %v %q (%s), want the temporary failure", d.Action, d.Reply.String(), d.Reason)
	}
}
