package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sink is an smtp-sink instance that stores each mail transaction it accepts as
// one file in Dir.
type Sink struct {
	Addr string // "127.0.0.1:PORT"
	Dir  string // one file per accepted transaction
	proc *Process
}

// SinkOptions configure StartSink. The zero value accepts everything.
type SinkOptions struct {
	// Reject lists SMTP commands the sink answers with a hard 5xx error
	// (smtp-sink -f), for example "." to reject each message after its content
	// (a bounce test) or "RCPT".
	Reject []string
	// TempFail lists SMTP commands answered with a soft 4xx error (smtp-sink -r).
	TempFail []string
	// Hostname is used in the greeting; default "sink.test".
	Hostname string
}

// SinkMessage is one transaction stored by the sink.
type SinkMessage struct {
	Path     string      // the capture file
	MailFrom string      // MAIL FROM address without <>
	Rcpts    []string    // RCPT TO addresses without <>, in order
	Raw      []byte      // the message as received, LF line endings (smtp-sink stores LF)
	Header   mail.Header // parsed header of Raw
	Body     []byte      // body of Raw
}

// StartSink starts smtp-sink on a free port, running as nobody, in a new instance
// directory. The process is stopped when the test ends.
func StartSink(t testing.TB, o SinkOptions) *Sink {
	t.Helper()
	RequireRoot(t)
	bin := RequirePeer(t, "smtp-sink")
	dir := InstanceDir(t, "sink")
	s := &Sink{Addr: FreeAddr(t), Dir: filepath.Join(dir, "mail")}
	mkdirs(t, 0o777, s.Dir)
	host := o.Hostname
	if host == "" {
		host = "sink.test"
	}
	argv := []string{bin, "-u", "nobody", "-h", host, "-d", s.Dir + "/%M%S."}
	if len(o.Reject) > 0 {
		argv = append(argv, "-f", strings.Join(o.Reject, ","))
	}
	if len(o.TempFail) > 0 {
		argv = append(argv, "-r", strings.Join(o.TempFail, ","))
	}
	argv = append(argv, s.Addr, "64")
	s.proc = Command{Name: "smtp-sink", Argv: argv, Dir: dir, Ready: func() bool { return Listening(s.Addr) }}.Start(t)
	return s
}

// Port returns the sink's TCP port.
func (s *Sink) Port() int {
	n, _ := strconv.Atoi(portOf(s.Addr))
	return n
}

// Messages returns the transactions the sink has completed so far, oldest first.
// A capture file that smtp-sink still holds open is not complete and is left out.
func (s *Sink) Messages() ([]SinkMessage, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, err
	}
	open := openFiles(s.proc.Pid())
	var msgs []SinkMessage
	for _, e := range entries {
		path := filepath.Join(s.Dir, e.Name())
		if e.IsDir() || open[path] {
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		m, err := ParseSinkFile(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m.Path = path
		msgs = append(msgs, m)
	}
	// Names start with the minute and second of arrival; sort by modification
	// time to get arrival order across an hour boundary too.
	sort.SliceStable(msgs, func(i, j int) bool { return modTime(msgs[i].Path).Before(modTime(msgs[j].Path)) })
	return msgs, nil
}

// Wait polls until the sink holds at least n complete messages and returns them. The
// test fails after timeout, listing what did arrive.
func (s *Sink) Wait(t testing.TB, n int, timeout time.Duration) []SinkMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := s.Messages()
		if err != nil {
			t.Fatalf("e2e: sink: %v", err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2e: sink got %d message(s) within %v, want %d\n--- smtp-sink output ---\n%s",
				len(msgs), timeout, n, s.proc.Output())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// ParseSinkFile parses one smtp-sink capture file: the X-Client-Addr, X-Mail-Args,
// X-Rcpt-Args... records and smtp-sink's own three-line Received header, then the
// message, then one empty line.
func ParseSinkFile(raw []byte) (SinkMessage, error) {
	var m SinkMessage
	r := bufio.NewReader(bytes.NewReader(raw))
	offset := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return m, fmt.Errorf("sink file: no smtp-sink Received header")
		}
		offset += len(line)
		name, value, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		value = strings.TrimSpace(value)
		switch name {
		case "X-Mail-Args":
			m.MailFrom = firstAddr(value)
		case "X-Rcpt-Args":
			m.Rcpts = append(m.Rcpts, firstAddr(value))
		case "Received":
			// Two continuation lines follow: "\tby smtp-sink ..." and the date.
			for range 2 {
				cont, err := r.ReadString('\n')
				if err != nil {
					return m, fmt.Errorf("sink file: short smtp-sink Received header")
				}
				offset += len(cont)
			}
			m.Raw = bytes.TrimSuffix(raw[offset:], []byte("\n"))
			msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
			if err != nil {
				return m, fmt.Errorf("sink file: %w", err)
			}
			m.Header = msg.Header
			m.Body, err = io.ReadAll(msg.Body)
			return m, err
		}
	}
}

// firstAddr returns the first word of an SMTP argument list without its <>.
func firstAddr(args string) string {
	f := strings.Fields(args)
	if len(f) == 0 {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(f[0], "<"), ">")
}

// openFiles returns the files the process pid has open.
func openFiles(pid int) map[string]bool {
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil
	}
	open := make(map[string]bool, len(entries))
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil {
			open[target] = true
		}
	}
	return open
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
