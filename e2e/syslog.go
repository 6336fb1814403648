package e2e

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/internal/syncbuf"
)

// Syslog is a minimal syslog receiver on a unix datagram socket. Sendmail logs only
// through syslog(3), so the Sendmail harness mounts this socket over /dev/log inside
// Sendmail's own mount namespace.
type Syslog struct {
	Path  string // the socket
	conn  *net.UnixConn
	lines *syncbuf.Buffer
	done  chan struct{}
}

// StartSyslog listens on the unix datagram socket path (mode 0666, so that
// processes which dropped root can log) until the test ends.
func StartSyslog(t testing.TB, path string) *Syslog {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("e2e: syslog socket: %v", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		conn.Close()
		t.Fatalf("e2e: syslog socket: %v", err)
	}
	s := &Syslog{Path: path, conn: conn, lines: &syncbuf.Buffer{}, done: make(chan struct{})}
	go s.read()
	t.Cleanup(func() {
		s.conn.Close()
		<-s.done
	})
	return s
}

// read stores one line per datagram until the socket is closed.
func (s *Syslog) read() {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	for {
		n, _, err := s.conn.ReadFromUnix(buf)
		if err != nil {
			return
		}
		line := strings.TrimRight(stripPriority(string(buf[:n])), "\r\n\x00")
		_, _ = s.lines.Write([]byte(line + "\n"))
	}
}

// String returns the lines received so far, without their <PRI> prefixes.
func (s *Syslog) String() string { return s.lines.String() }

// stripPriority removes the "<NN>" that starts a syslog datagram.
func stripPriority(msg string) string {
	if strings.HasPrefix(msg, "<") {
		if i := strings.IndexByte(msg, '>'); i > 0 && i <= 4 {
			return msg[i+1:]
		}
	}
	return msg
}
