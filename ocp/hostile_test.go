package ocp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

var hostileInputs = []struct {
	name string
	wire string
}{
	{"2GB payload", "DUM 1 0\r\n2147483647:"},
	{"2GB quoted atom", "x-doit \"2147483647:"},
	{"100000-deep lists", "NO " + strings.Repeat("(", 100000) + ";\r\n"},
	{"100000-deep structures", "NO " + strings.Repeat("{", 100000) + ";\r\n"},
	{"endless atom", "NO " + strings.Repeat("a", 1<<20)},
	{"many values", "NO " + strings.Repeat("(a,", 50000)},
}

// TestDecoderHostileAllocations checks that hostile announcements fail
// before anything large is allocated.
func TestDecoderHostileAllocations(t *testing.T) {
	for _, h := range hostileInputs {
		t.Run(h.name, func(t *testing.T) {
			var err error
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			allocs := testing.AllocsPerRun(5, func() {
				_, err = NewDecoder(strings.NewReader(h.wire), Limits{}).Decode()
			})
			runtime.ReadMemStats(&ms1)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v, want ErrLimit", err)
			}
			perRun := (ms1.TotalAlloc - ms0.TotalAlloc) / 6
			if perRun > 512<<10 {
				t.Errorf("%d bytes allocated per decode", perRun)
			}
			if allocs > 2000 {
				t.Errorf("%.0f allocations per decode", allocs)
			}
		})
	}
}

// rawPeer connects to addr and returns the connection and a decoder on it.
func rawPeer(t *testing.T, addr string) (net.Conn, *Decoder) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, NewDecoder(nc, Limits{})
}

// expectCE400 reads messages until CE and checks it carries 400 and that
// the connection then closes.
func expectCE400(t *testing.T, d *Decoder) {
	t.Helper()
	for {
		m, err := d.Decode()
		if err != nil {
			t.Fatalf("connection ended without CE: %v", err)
		}
		if m.Name != MsgCE {
			continue
		}
		res, err := resultOf(m, 0)
		if err != nil || res.Code != CodeFailure {
			t.Fatalf("CE result %v, %v; want 400", res, err)
		}
		break
	}
	if m, err := d.Decode(); err != io.EOF {
		t.Fatalf("after CE: %v %v, want EOF", m, err)
	}
}

// TestServerHostileInput sends each hostile input to a Server and checks
// the CE 400 and the memory the server spent.
func TestServerHostileInput(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(echoHandler), Negotiate: acceptProfile}
	addr := startServer(t, srv)
	for _, h := range hostileInputs {
		t.Run(h.name, func(t *testing.T) {
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			nc, d := rawPeer(t, addr)
			go nc.Write([]byte("CS;\r\nNO ();\r\n" + h.wire))
			expectCE400(t, d)
			runtime.ReadMemStats(&ms1)
			if spent := ms1.TotalAlloc - ms0.TotalAlloc; spent > 4<<20 {
				t.Errorf("server allocated %d bytes", spent)
			}
		})
	}
}

// TestClientHostileInput has a fake server send each hostile input to a
// Client after a valid handshake.
func TestClientHostileInput(t *testing.T) {
	for _, h := range hostileInputs {
		t.Run(h.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan []byte, 1)
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				nc.Write([]byte("CS;\r\nNR;\r\n"))
				time.Sleep(50 * time.Millisecond)
				go nc.Write([]byte(h.wire))
				b, _ := io.ReadAll(nc)
				got <- b
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			cl, err := Dial(ctx, ln.Addr().String(), ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-cl.Done():
			case <-ctx.Done():
				t.Fatal("client still open")
			}
			runtime.ReadMemStats(&ms1)
			if spent := ms1.TotalAlloc - ms0.TotalAlloc; spent > 4<<20 {
				t.Errorf("client allocated %d bytes", spent)
			}
			var ce *ConnError
			if err := cl.Err(); !errors.As(err, &ce) || ce.Remote || ce.Result.Code != CodeFailure {
				t.Errorf("Err() = %v, want local CE 400", err)
			}
			out := <-got
			if !bytes.Contains(out, []byte("CE {400 ")) {
				t.Errorf("client sent %q, want a CE 400", out)
			}
		})
	}
}
