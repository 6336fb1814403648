package ocptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Wire plays one OCP connection at the byte level and records the whole
// conversation in the golden transcript format (testdata/profile,
// docs/profile.md 16): each message with its exact octets after "P: " (the
// processor's) or "S: " (the server's), and "# " comment lines. The wire
// tests of bridge and callout compare such a recording with a file in
// their testdata/wire (CompareGolden). Send, Recv and Note are meant for
// one goroutine; Log may be called from another.
type Wire struct {
	nc       net.Conn
	rec      *recorder
	dec      *ocp.Decoder
	used     int // octets of rec.buf already attributed to messages
	sendTag  string
	recvTag  string
	mu       sync.Mutex
	log      bytes.Buffer
	received []byte // the octets of the last message received
}

// recorder keeps every octet read from the peer.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// NewWire plays nc as the processor (processor true: what it sends is
// "P: ") or as the callout server.
func NewWire(nc net.Conn, processor bool) *Wire {
	w := &Wire{nc: nc, rec: &recorder{r: nc}, sendTag: "S: ", recvTag: "P: "}
	if processor {
		w.sendTag, w.recvTag = "P: ", "S: "
	}
	w.dec = ocp.NewDecoder(w.rec, ocp.Limits{})
	return w
}

// Send writes m in canonical form, recorded as it goes out.
func (w *Wire) Send(m *ocp.Message) error { return w.SendRaw(string(ocp.AppendMessage(nil, m))) }

// SendRaw writes octets as they are (a message not in canonical form, for
// example), recorded as they go out.
func (w *Wire) SendRaw(octets string) error {
	w.mu.Lock()
	w.log.WriteString(w.sendTag)
	w.log.WriteString(octets)
	w.mu.Unlock()
	_, err := io.WriteString(w.nc, octets)
	return err
}

// Recv reads the peer's next message and records its exact octets
// (Received returns them); io.EOF at the end of the connection.
func (w *Wire) Recv() (*ocp.Message, error) {
	m, err := w.dec.Decode()
	if err != nil {
		return nil, err
	}
	end := len(w.rec.buf) - w.dec.Buffered()
	w.received = w.rec.buf[w.used:end]
	w.used = end
	w.mu.Lock()
	w.log.WriteString(w.recvTag)
	w.log.Write(w.received)
	w.mu.Unlock()
	return m, nil
}

// Received returns the octets of the message Recv returned last.
func (w *Wire) Received() []byte { return w.received }

// Note adds a comment line to the recording.
func (w *Wire) Note(format string, args ...any) {
	w.mu.Lock()
	fmt.Fprintf(&w.log, "# "+format+"\n", args...)
	w.mu.Unlock()
}

// Log returns the recording so far.
func (w *Wire) Log() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.log.Bytes())
}

// CompareGolden compares a recording, headed by comment (each line becomes
// a "# " line), with the golden transcript at path, which must parse. With
// update it first rewrites the file: run the tests with -update after a
// deliberate change, and read the diff.
func CompareGolden(t testing.TB, path, comment string, recording []byte, update bool) {
	t.Helper()
	var head strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
		head.WriteString("# " + strings.TrimSpace(l) + "\n")
	}
	file := append([]byte(head.String()), recording...)
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if _, err := ocpsmtp.ParseTranscript(want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(file, want) {
		t.Fatalf("the conversation differs from %s:\n--- got\n%s\n--- want\n%s", path, file, want)
	}
}

// RoundTrip encodes m, decodes it with the strict decoder and checks that
// the same octets come back and nothing is left over; it returns the
// decoded message. The fuzzers of what each side builds use it.
func RoundTrip(t testing.TB, m *ocp.Message) *ocp.Message {
	t.Helper()
	wire := ocp.AppendMessage(nil, m)
	dec := ocp.NewDecoder(bytes.NewReader(wire), ocp.Limits{})
	got, err := dec.Decode()
	if err != nil {
		t.Fatalf("the strict decoder refuses a message we build: %v\n%q", err, wire)
	}
	if again := ocp.AppendMessage(nil, got); !bytes.Equal(again, wire) {
		t.Fatalf("round trip changed the message:\n%q\n%q", wire, again)
	}
	if dec.Buffered() != 0 {
		t.Fatalf("%d octets left after the message: %q", dec.Buffered(), wire)
	}
	return got
}

// Serving is a server ServeAndDial can run: a callout.Server, for one.
type Serving interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// ServeAndDial serves srv on a loopback port until the test ends (shut
// down within 5 s) and returns a connection to it, closed when the test
// ends, with a 10 s deadline.
func ServeAndDial(t testing.TB, srv Serving) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}
