package e2e

import (
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// ocpRecorder is a TCP proxy between opes-milter and opes-callout that keeps
// what the processor sent, so that a scenario can show which OCP/SMTP
// profile a message travelled under.
type ocpRecorder struct {
	Addr   string
	ln     net.Listener
	mu     sync.Mutex
	target string             // where to proxy to; connections before it is set are closed
	sent   []*strings.Builder // per connection, processor to server
	wg     sync.WaitGroup
}

// setTarget sets the callout server address the recorder proxies to.
func (r *ocpRecorder) setTarget(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target = addr
}

// startOCPRecorder listens on a free loopback port and proxies each
// connection to the target set with setTarget, until the test ends.
func startOCPRecorder(t testing.TB) *ocpRecorder {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &ocpRecorder{Addr: ln.Addr().String(), ln: ln}
	var conns []net.Conn
	var connsMu sync.Mutex
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			target := r.target
			r.mu.Unlock()
			s, err := net.Dial("tcp", target)
			if target == "" || err != nil {
				c.Close()
				continue
			}
			connsMu.Lock()
			conns = append(conns, c, s)
			connsMu.Unlock()
			buf := &strings.Builder{}
			r.mu.Lock()
			r.sent = append(r.sent, buf)
			r.mu.Unlock()
			r.wg.Add(2)
			go func() {
				defer r.wg.Done()
				_, _ = io.Copy(s, io.TeeReader(c, lockedWriter{&r.mu, buf}))
				_ = s.(*net.TCPConn).CloseWrite()
			}()
			go func() {
				defer r.wg.Done()
				_, _ = io.Copy(c, s)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		r.wg.Wait()
	})
	return r
}

// lockedWriter appends to a builder under the recorder's lock.
type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// streams returns what the processor sent so far, per connection.
func (r *ocpRecorder) streams() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.sent))
	for i, b := range r.sent {
		out[i] = b.String()
	}
	return out
}

var (
	// dumRE matches the first line of a data use mine: "DUM xid offset".
	dumRE = regexp.MustCompile(`(?m)^DUM (\d+) \d+\r?$`)
	// sgOfferRE matches a service-group-scoped negotiation offer: the
	// profile it offers first and the group.
	sgOfferRE = regexp.MustCompile(`NO \(\{"\d+:(http://iana\.org/opes/ocp/SMTP/\w+)"[^;]*?SG: (\d+)`)
)

// profileOf returns the OCP/SMTP profile URI under which the processor
// sent the first recorded transaction whose parts contain marker (for
// example the AM-OPT "daemon-name MSA}"), or "" when there is none: the
// DUM holding the marker names the transaction, its TS the service group,
// and the group's negotiation offer the profile.
func (r *ocpRecorder) profileOf(marker string) string {
	for _, s := range r.streams() {
		i := strings.Index(s, marker)
		if i < 0 {
			continue
		}
		dums := dumRE.FindAllStringSubmatch(s[:i], -1)
		if len(dums) == 0 {
			continue
		}
		ts := regexp.MustCompile(`(?m)^TS ` + dums[len(dums)-1][1] + ` (\d+);`).FindStringSubmatch(s)
		if ts == nil {
			continue
		}
		for _, m := range sgOfferRE.FindAllStringSubmatch(s, -1) {
			if m[2] == ts[1] {
				return m[1]
			}
		}
	}
	return ""
}

func TestProfileOf(t *testing.T) {
	stream := "CS;\r\nNO ();\r\nSGC 1 ({\"5:a/svc\"});\r\n" +
		"NO ({\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\nAdaptive-Parts: (MAIL)\r\n})\r\nSG: 1\r\n;\r\n" +
		"SGC 2 ({\"5:b/svc\"});\r\n" +
		"NO ({\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\nAdaptive-Parts: (RCPT)\r\n})\r\nSG: 2\r\n;\r\n" +
		"TS 7 2;\r\nTS 8 1;\r\n" +
		"DUM 8 0\r\nAM-Part: MAIL\r\nAM-OPT: ({daemon-name LOCAL})\r\n\r\n3:<a>\r\n;\r\n" +
		"DUM 7 0\r\nAM-Part: MAIL\r\nAM-OPT: ({daemon-name MTA})\r\n\r\n3:<b>\r\n;\r\n"
	r := &ocpRecorder{sent: []*strings.Builder{{}}}
	r.sent[0].WriteString(stream)
	for marker, want := range map[string]string{
		"daemon-name LOCAL}": "http://iana.org/opes/ocp/SMTP/sender",
		"daemon-name MTA}":   "http://iana.org/opes/ocp/SMTP/receiver",
		"daemon-name MSA}":   "",
	} {
		if got := r.profileOf(marker); got != want {
			t.Errorf("profileOf(%q) = %q, want %q", marker, got, want)
		}
	}
}
