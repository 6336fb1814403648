package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
	"golang.org/x/sys/unix"
)

// The antivirus cases: opes-milter + opes-callout with the clamd service
// (d), clamav-milter as the anchor, and clamd called directly with the same
// messages, all over one clamd that the bench starts for the whole run
// from a database holding a single test signature (no freshclam, no
// official database: the engine's per-message work is the same, the
// signature matching is not). clamd's CPU counts in every case that uses
// it.

// benchClamdConf is the bench clamd's configuration.
const benchClamdConf = `DatabaseDirectory @DIR@/db
LocalSocket @DIR@/clamd.sock
LocalSocketMode 666
Foreground yes
LogFile @DIR@/clamd.log
PidFile @DIR@/clamd.pid
User clamav
AlertExceedsMax yes
MaxThreads 32
MaxQueue 200
`

// benchSignature is the only signature of the bench clamd: the MD5 of a
// string no generated message contains.
const benchSignature = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$OPES-TEST-SIGNATURE-FILE!$H+H*\n"

// clamdProc is the run's clamd.
type clamdProc struct {
	Socket string
	*child
}

// clamd returns the run's clamd, starting it on first use.
func (e *env) clamd() (*clamdProc, error) {
	e.clamdOnce.Do(func() { e.clamdProc, e.clamdErr = e.startClamd() })
	return e.clamdProc, e.clamdErr
}

func (e *env) startClamd() (*clamdProc, error) {
	bin, err := peer("clamd")
	if err != nil {
		return nil, err
	}
	u, err := user.Lookup("clamav")
	if err != nil {
		return nil, fmt.Errorf("clamd: %w (apt-get install clamav-daemon)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := filepath.Join(e.work, "clamd")
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		return nil, err
	}
	sig := fmt.Sprintf("%x:%d:Opes.Bench.Signature\n", md5.Sum([]byte(benchSignature)), len(benchSignature))
	if err := os.WriteFile(filepath.Join(dir, "db", "bench.hdb"), []byte(sig), 0o644); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "clamd.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(benchClamdConf, "@DIR@", dir)), 0o644); err != nil {
		return nil, err
	}
	for _, p := range []string{dir, filepath.Join(dir, "db"), filepath.Join(dir, "db", "bench.hdb")} {
		if err := os.Chown(p, uid, gid); err != nil {
			return nil, err
		}
	}
	c := &clamdProc{Socket: filepath.Join(dir, "clamd.sock")}
	c.child, err = startChild("clamd", []string{bin, "-c", conf}, dir, filepath.Join(dir, "clamd.out"),
		func() bool { return peerprobe.Clamd("unix", c.Socket) })
	if err != nil {
		return nil, err
	}
	return c, nil
}

// clamdScanFD passes msg to clamd as the clamd service does by default
// over a unix socket: written into an in-memory file whose descriptor goes
// with zFILDES, on a new connection. It returns clamd's reply.
func clamdScanFD(socket string, msg []byte, timeout time.Duration) (string, error) {
	fd, err := unix.MemfdCreate("opes-bench-scan", unix.MFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	for off := 0; off < len(msg); {
		n, err := unix.Pwrite(fd, msg[off:], int64(off))
		if err != nil {
			return "", err
		}
		off += n
	}
	c, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, _, err := c.(*net.UnixConn).WriteMsgUnix([]byte("zFILDES\x00\x00"), syscall.UnixRights(fd), nil); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(c).ReadString(0)
	return strings.TrimSuffix(reply, "\x00"), err
}

// clamdClean reports whether reply is clamd's "nothing found" to zINSTREAM
// ("stream: OK") or zFILDES ("fd[N]: OK").
func clamdClean(reply string) bool {
	return reply == "stream: OK" || strings.HasPrefix(reply, "fd[") && strings.HasSuffix(reply, "]: OK")
}

// messageBytes returns a generated message as the milter sees it: header
// fields, the empty line, the body.
func messageBytes(m Message) []byte {
	var b bytes.Buffer
	for _, f := range m.Header {
		b.WriteString(f.Name + ": " + f.Value + "\r\n")
	}
	b.WriteString("\r\n")
	io.Copy(&b, m.Body())
	return b.Bytes()
}

// runClamdDirect sends the direct cases' messages straight to clamd, o.Sessions
// at a time, for o.Duration after o.Warmup: the latency opes-milter and
// opes-callout add over clamd itself is (d)'s minus this.
func (e *env) runClamdDirect(ctx context.Context, c Case, o Options) (Run, error) {
	cd, err := e.clamd()
	if err != nil {
		return Run{}, err
	}
	load := func(d time.Duration) (int, int, []string, []time.Duration, time.Duration) {
		var (
			mu      sync.Mutex
			good    int
			bad     int
			samples []string
			lat     []time.Duration
			seq     uint64
			wg      sync.WaitGroup
		)
		start := time.Now()
		end := start.Add(d)
		for range o.Sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil && time.Now().Before(end) {
					mu.Lock()
					seq++
					n := seq
					mu.Unlock()
					msg := messageBytes(NewMessage(o.Mix.Pick(int(n)), n))
					t0 := time.Now()
					reply, err := clamdScanFD(cd.Socket, msg, 60*time.Second)
					el := time.Since(t0)
					mu.Lock()
					if err == nil && clamdClean(reply) {
						good++
						lat = append(lat, el)
					} else {
						bad++
						if len(samples) < maxErrorSamples {
							samples = append(samples, fmt.Sprintf("%q %v", reply, err))
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return good, bad, samples, lat, time.Since(start)
	}
	if o.Warmup > 0 {
		load(o.Warmup)
	}
	m := startMeter([]Component{{Name: "clamd", Pid: cd.Pid()}, {Name: "load generator", Driver: true}})
	good, bad, samples, lat, elapsed := load(o.Duration)
	return Run{Case: c.ID, Messages: good, Errors: bad, FirstErrors: samples, Elapsed: elapsed,
		Latencies: lat, Usage: m.Stop()}, nil
}

// clamavMilterConf configures Debian's clamav-milter over the run's clamd:
// reject what it finds, tempfail when clamd fails, a verdict header on
// every message (as opes-callout's verdict_header).
const clamavMilterConf = `MilterSocket inet:@PORT@@127.0.0.1
ClamdSocket unix:@SOCKET@
Foreground yes
User clamav
PidFile @DIR@/clamav-milter.pid
TemporaryDirectory @DIR@
LogFile @DIR@/clamav-milter.log
OnClean Accept
OnInfected Reject
OnFail Defer
AddHeader Replace
MaxFileSize 25M
ReadTimeout 120
`

// startClamavMilter starts clamav-milter in dir over the run's clamd and
// returns its address.
func (e *env) startClamavMilter(dir string) (*child, string, error) {
	bin, err := peer("clamav-milter")
	if err != nil {
		return nil, "", err
	}
	cd, err := e.clamd()
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	host, port, _ := net.SplitHostPort(addr)
	if host != "127.0.0.1" {
		return nil, "", errors.New("clamav-milter: want a 127.0.0.1 address")
	}
	u, err := user.Lookup("clamav")
	if err != nil {
		return nil, "", err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	mdir := filepath.Join(dir, "clamav-milter")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, "", err
	}
	if err := os.Chown(mdir, uid, gid); err != nil {
		return nil, "", err
	}
	conf := strings.NewReplacer("@PORT@", port, "@SOCKET@", cd.Socket, "@DIR@", mdir).Replace(clamavMilterConf)
	path := filepath.Join(mdir, "clamav-milter.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	ch, err := startChild("clamav-milter", []string{bin, "-c", path}, mdir, filepath.Join(dir, "clamav-milter.out"),
		func() bool { return peerprobe.Listening(addr) })
	if err != nil {
		return nil, "", err
	}
	return ch, addr, nil
}
