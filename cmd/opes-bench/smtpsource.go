package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// smtpSource runs Postfix's smtp-source(1) load generator: sessions
// parallel SMTP sessions, one message each (no -d), size bytes of body
// and rcpts recipients per message.
type smtpSource struct {
	addr     string
	sessions int
	size     int64
	rcpts    int
}

// sourceResult is the wall and CPU time of one smtp-source run.
type sourceResult struct {
	elapsed time.Duration
	cpu     time.Duration
	maxRSS  int64 // bytes
}

// run sends messages and returns when smtp-source has exited, that is
// when Postfix has accepted (queued) the last message.
func (s smtpSource) run(ctx context.Context, messages int) (sourceResult, error) {
	bin, err := peer("smtp-source")
	if err != nil {
		return sourceResult{}, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin,
		"-s", strconv.Itoa(s.sessions), "-m", strconv.Itoa(messages),
		"-l", strconv.FormatInt(s.size, 10), "-r", strconv.Itoa(s.rcpts),
		"-f", "sender@example.org", "-t", "rcpt@example.com", "-M", "client.bench.test", s.addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	res := sourceResult{elapsed: time.Since(start)}
	if ps := cmd.ProcessState; ps != nil {
		res.cpu = ps.UserTime() + ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			res.maxRSS = ru.Maxrss << 10
		}
	}
	if err != nil || strings.Contains(out.String(), "smtp-source:") {
		return res, fmt.Errorf("smtp-source: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return res, nil
}
