package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// readyTimeout bounds how long a started program may take to listen.
const readyTimeout = 30 * time.Second

// stopGrace is how long a process group has between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// child is a program the bench started, in its own process group, with
// its standard output and error in a log file.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // valid once done is closed
}

// ErrNotReady reports a program that exited or did not get ready in time.
var ErrNotReady = errors.New("program not ready")

// startChild starts argv in dir with its output appended to logPath and
// waits until ready (nil: at once).
func startChild(name string, argv []string, dir, logPath string, ready func() bool) (*child, error) {
	return startChildWithin(name, argv, dir, logPath, readyTimeout, ready)
}

// startChildWithin is startChild with another bound on getting ready.
func startChildWithin(name string, argv []string, dir, logPath string, timeout time.Duration, ready func() bool) (*child, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	c := &child{name: name, log: logPath, done: make(chan struct{})}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	if ready == nil {
		return c, nil
	}
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case <-c.done:
			return nil, fmt.Errorf("%w: %s exited: %v\n%s", ErrNotReady, name, c.err, c.Tail(20))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("%w: %s not listening after %v\n%s", ErrNotReady, name, timeout, c.Tail(20))
		}
	}
	return c, nil
}

// Pid is the process id, also the process group id.
func (c *child) Pid() int { return c.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (c *child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after stopGrace,
// and waits for the process. It may be called more than once.
func (c *child) Stop() {
	pg := c.cmd.Process.Pid
	_ = syscall.Kill(-pg, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopGrace):
	}
	_ = syscall.Kill(-pg, syscall.SIGKILL)
	<-c.done
}

// Tail returns the last n lines of the program's log.
func (c *child) Tail(n int) string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freeAddr returns "127.0.0.1:PORT" for a port that was free a moment ago.
func freeAddr() (string, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// freeAddrs returns n distinct "127.0.0.1:PORT" addresses that were free a
// moment ago. It holds each port until all are chosen: ports asked for one
// after the other may come back equal, and then one program of a pair
// fails to bind while the other answers on its address.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
