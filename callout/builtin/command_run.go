package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// cmdResult is the outcome of one run.
type cmdResult struct {
	status int
	out    *callout.Spool
	stderr string
	err    error // the program did not run to a normal exit
}

func (r *cmdResult) firstLine() string {
	if r.out.Len() == 0 {
		return ""
	}
	m, err := r.out.Peek(512)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(m), "\n")
	return strings.TrimSpace(sanitizeHeaderValue(line))
}

func (c *Command) run(ctx context.Context, tx *callout.Tx, msg *callout.Message) *cmdResult {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res := &cmdResult{out: msg.NewSpool()}
	cmd := exec.CommandContext(ctx, c.opts.Argv[0], c.opts.Argv[1:]...)
	cmd.Stdin = msg.NewReader()
	lim := &limitWriter{w: &crlfWriter{w: res.out}, n: c.maxOutput}
	cmd.Stdout = lim
	var stderr bytes.Buffer
	cmd.Stderr = &limitWriter{w: &stderr, n: 4096}
	cmd.Env = c.env(tx)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	res.stderr = strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.err = fmt.Errorf("%w after %v", ctx.Err(), c.timeout)
	case lim.over:
		res.err = fmt.Errorf("output larger than %d bytes", c.maxOutput)
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		res.status = exit.ExitCode()
	case err != nil:
		res.err = err
	}
	return res
}

func (c *Command) env(tx *callout.Tx) []string {
	rcpts := make([]string, len(tx.Recipients))
	for i, r := range tx.Recipients {
		rcpts[i] = r.Addr
	}
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"OPES_CLIENT_IP=" + tx.Client.IP,
		"OPES_HELO=" + tx.Client.Helo,
		"OPES_SENDER=" + tx.Sender.Addr,
		"OPES_RECIPIENTS=" + strings.Join(rcpts, " "),
		"OPES_AUTH_USER=" + tx.AuthUser(),
		"OPES_QUEUE_ID=" + tx.Opt(ocpsmtp.OptQueueID),
		"OPES_SERVICE=" + tx.Service,
	}
}

// limitWriter passes at most n bytes on and then reports the overflow.
type limitWriter struct {
	w    io.Writer
	n    int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		l.over = true
		p = p[:l.n]
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	if err == nil && l.over {
		err = errors.New("callout: output limit reached")
	}
	return n, err
}

// crlfWriter turns bare LF line breaks into CRLF, the form of RAWDATA.
type crlfWriter struct {
	w      io.Writer
	lastCR bool
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	var buf []byte
	for _, b := range p {
		if b == '\n' && !c.lastCR {
			buf = append(buf, '\r')
		}
		buf = append(buf, b)
		c.lastCR = b == '\r'
	}
	if _, err := c.w.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
