package milter

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/mapping"
)

// TestShutdownGraceful: in-flight sessions finish, new ones are refused.
func TestShutdownGraceful(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	srv, addr := startServer(t, h, Options{})
	s := mta(t, addr)
	must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
	must(t)(s.Helo("h"))

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	// new connections are refused once the listener is closed
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting during shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a session in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	must(t)(s.Mail("a@x", ""))
	must(t)(s.Rcpt("b@y", ""))
	must(t)(s.DataStart())
	must(t)(s.HeaderEnd())
	must(t)(s.BodyChunk([]byte("x")))
	if _, act, err := s.End(); err != nil || act.Type != gomilter.ActionAccept {
		t.Fatalf("in-flight message: %v %v", act, err)
	}
	_ = s.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last session ended")
	}
	assertBalanced(t, h)
}

// TestShutdownForced: a session outliving the deadline is closed and its
// bridge call cancelled.
func TestShutdownForced(t *testing.T) {
	for _, viaClose := range []bool{false, true} {
		h := &fakeHandler{req: allEvents}
		cancelled := make(chan struct{})
		h.eom = func(ctx context.Context, _ bridge.Modifier) bridge.Reply {
			<-ctx.Done()
			close(cancelled)
			return bridge.Reply{Kind: bridge.TempFail}
		}
		srv, addr := startServer(t, h, Options{})
		s := mta(t, addr)
		for _, step := range []func() (*gomilter.Action, error){
			func() (*gomilter.Action, error) { return s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1") },
			func() (*gomilter.Action, error) { return s.Helo("h") },
			func() (*gomilter.Action, error) { return s.Mail("a@x", "") },
			func() (*gomilter.Action, error) { return s.Rcpt("b@y", "") },
			s.DataStart, s.HeaderEnd,
			func() (*gomilter.Action, error) { return s.BodyChunk([]byte("x")) },
		} {
			must(t)(step())
		}
		ended := make(chan error, 1)
		go func() { _, _, err := s.End(); ended <- err }()
		h.waitLog(t, "eom i=QID1")
		start := time.Now()
		if viaClose {
			if err := srv.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
			}
			cancel()
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("forced stop took %v", d)
		}
		select {
		case <-cancelled:
		default:
			t.Error("bridge call not cancelled")
		}
		if err := <-ended; err == nil {
			t.Error("MTA got an answer from a force-closed session")
		}
		assertBalanced(t, h)
	}
}

func TestServeAfterClose(t *testing.T) {
	srv := NewServer(&fakeHandler{req: allEvents}, Options{})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener left open")
	}
}

// TestServeUnix serves a unix socket made by Listen.
func TestServeUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.sock")
	ln, err := Listen(mapping.Socket{Network: "unix", Address: path})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{req: allEvents}
	srv := NewServer(h, Options{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	cs, err := gomilter.NewClient("unix", path, gomilter.WithReadTimeout(5*time.Second)).Session(nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(cs.Conn("local", gomilter.FamilyUnix, 0, "/var/run/x"))
	_ = cs.Close()
	h.waitLog(t, "close")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
	if calls := h.log(); calls[1] != `connect local unix /var/run/x 0 v="" daemon=""` {
		t.Errorf("calls %q", calls)
	}
}
