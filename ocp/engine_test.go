package ocp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

const testProfile = "http://iana.org/opes/ocp/SMTP/receiver"

// echoHandler answers every transaction with the original data echoed in
// one adapted message, then ends the transaction.
func echoHandler(ctx context.Context, tx *ServerTx) {
	var data []byte
	for {
		m, err := tx.Recv(ctx)
		if err != nil {
			return
		}
		switch m.Name {
		case MsgDUM:
			data = append(data, m.Payload...)
		case MsgAME:
			if err := tx.StartMessage(); err != nil {
				return
			}
			if _, err := tx.Send(ctx, []Param{NewParam("AM-Part", Atom("RAWDATA"))}, data); err != nil {
				return
			}
			if err := tx.EndMessage(Result{}); err != nil {
				return
			}
			tx.End(ctx, Result{})
			return
		}
	}
}

// startServer runs srv on a loopback listener and returns its address.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

func acceptProfile(g *Group, offer []Feature) (Feature, bool) {
	for _, f := range offer {
		if f.URI == testProfile {
			return f, true
		}
	}
	return Feature{}, false
}

func dialTest(t testing.TB, addr string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := Dial(ctx, addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(context.Background(), Result{}) })
	return cl
}

func newGroup(t testing.TB, cl *Client) *ServiceGroup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sg, sel, err := cl.NewServiceGroup(ctx, []Service{{URI: "urn:test:echo"}},
		[]Feature{{URI: testProfile, Params: []Param{NewParam("Adaptive-Parts", List{Atom("RAWDATA")})}}})
	if err != nil {
		t.Fatal(err)
	}
	if sel.URI != testProfile || sg.Profile == nil {
		t.Fatalf("selected %+v", sel)
	}
	return sg
}

// runTx runs one echo transaction and checks the adapted data.
func runTx(ctx context.Context, cl *Client, sg *ServiceGroup, payload []byte) error {
	tx, err := cl.Start(ctx, sg)
	if err != nil {
		return err
	}
	defer tx.End(ctx, Result{})
	if err := tx.StartMessage(); err != nil {
		return err
	}
	if _, err := tx.Send(ctx, []Param{NewParam("AM-Part", Atom("RAWDATA"))}, payload); err != nil {
		return err
	}
	if err := tx.EndMessage(Result{}); err != nil {
		return err
	}
	var got []byte
	for {
		m, err := tx.Recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if m.Name == MsgDUM {
			got = append(got, m.Payload...)
		}
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("xid %d: adapted %q, want %q", tx.Xid(), got, payload)
	}
	return nil
}

func TestLoopbackTransaction(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(echoHandler), Negotiate: acceptProfile}
	cl := dialTest(t, startServer(t, srv))
	sg := newGroup(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 3 {
		if err := runTx(ctx, cl, sg, []byte(fmt.Sprintf("message %d\r\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := cl.InFlight(); n != 0 {
		t.Errorf("InFlight = %d after all transactions ended", n)
	}
}

func TestLoopbackConcurrent(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(echoHandler), Negotiate: acceptProfile}
	cl := dialTest(t, startServer(t, srv))
	sg := newGroup(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				p := bytes.Repeat([]byte{byte('a' + w)}, 100+i*37)
				if err := runTx(ctx, cl, sg, p); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestServerRefusesUnknownGroup(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(echoHandler), Negotiate: acceptProfile}
	cl := dialTest(t, startServer(t, srv))
	sg := newGroup(t, cl)
	// Forge a group the server never saw.
	cl.mu.Lock()
	cl.lastSG++
	fake := &ServiceGroup{ID: cl.lastSG}
	cl.groups[fake.ID] = fake
	cl.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := cl.Start(ctx, fake)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Recv(ctx)
	var te *TxError
	if !errors.As(err, &te) || !te.Remote || te.Result.Code != CodeFailure {
		t.Fatalf("Recv err = %v, want remote *TxError 400", err)
	}
	// The connection survives.
	if err := runTx(ctx, cl, sg, []byte("still works")); err != nil {
		t.Fatal(err)
	}
}

func TestClientCloseFailsTransactions(t *testing.T) {
	block := make(chan struct{})
	srv := &Server{Handler: HandlerFunc(func(ctx context.Context, tx *ServerTx) {
		<-ctx.Done()
		close(block)
	}), Negotiate: acceptProfile}
	cl := dialTest(t, startServer(t, srv))
	sg := newGroup(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := cl.Start(ctx, sg)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close(context.Background(), Result{})
	_, err = tx.Recv(ctx)
	var ce *ConnError
	if !errors.As(err, &ce) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv err = %v, want *ConnError", err)
	}
	select {
	case <-block:
	case <-ctx.Done():
		t.Fatal("server handler context not cancelled after CE")
	}
}

func TestServerIdleTimeout(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(echoHandler), IdleTimeout: 200 * time.Millisecond}
	cl := dialTest(t, startServer(t, srv))
	select {
	case <-cl.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("idle connection not closed")
	}
	var ce *ConnError
	if err := cl.Err(); !errors.As(err, &ce) || !ce.Remote || ce.Result.Failed() {
		t.Fatalf("Err() = %v, want a remote CE without failure", err)
	}
}

func TestServerShutdownWaitsForTransactions(t *testing.T) {
	release := make(chan struct{})
	srv := &Server{Handler: HandlerFunc(func(ctx context.Context, tx *ServerTx) {
		<-release
		echoHandler(ctx, tx)
	}), Negotiate: acceptProfile}
	cl := dialTest(t, startServer(t, srv))
	sg := newGroup(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- runTx(ctx, cl, sg, []byte("in flight")) }()
	for srvInFlight(srv) == 0 {
		time.Sleep(time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a transaction in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("in-flight transaction: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-cl.Done()
}

func srvInFlight(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sc := range s.conns {
		n += sc.inFlight()
	}
	return n
}

func TestHandlerPanicEndsTransaction(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(func(ctx context.Context, tx *ServerTx) {
		panic("boom")
	}), Negotiate: acceptProfile}
	cl := dialTest(t, startServer(t, srv))
	sg := newGroup(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := cl.Start(ctx, sg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Recv(ctx)
	var te *TxError
	if !errors.As(err, &te) || !te.Remote {
		t.Fatalf("Recv err = %v, want remote *TxError", err)
	}
	// The connection survives: the next transaction fails alone.
	if err := runTx(ctx, cl, sg, []byte("again")); err == nil {
		t.Fatal("panicking handler answered")
	} else if !errors.As(err, &te) {
		t.Fatalf("second transaction: %v", err)
	}
}

func TestHandlerReturningMidMessage(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(func(ctx context.Context, tx *ServerTx) {
		tx.StartMessage()
	}), Negotiate: acceptProfile}
	cl := dialTest(t, startServer(t, srv))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := cl.Start(ctx, newGroup(t, cl))
	if err != nil {
		t.Fatal(err)
	}
	// The AMS may be purged by the failing TE before it is read.
	m, err := tx.Recv(ctx)
	if err == nil {
		if m.Name != MsgAMS {
			t.Fatalf("Recv = %s, want AMS", m.Name)
		}
		_, err = tx.Recv(ctx)
	}
	var te *TxError
	if !errors.As(err, &te) || te.Result.Code != CodeFailure {
		t.Fatalf("Recv err = %v, want TE 400", err)
	}
}

// TestPauseResume drives DWP/DPM/DWM through both roles: the server pauses
// the original flow, the processor's Send blocks until the server resumes.
// TestPauseResume, also with the sender corked: a corked sender that must
// wait for the peer's DWM lets what it holds go first (else the peer never
// sees the data it waits for before resuming).
func TestPauseResume(t *testing.T) {
	for _, corked := range []bool{false, true} {
		t.Run(fmt.Sprintf("corked=%v", corked), func(t *testing.T) { testPauseResume(t, corked) })
	}
}

func testPauseResume(t *testing.T, corked bool) {
	resumed := make(chan struct{})
	srv := &Server{Handler: HandlerFunc(func(ctx context.Context, tx *ServerTx) {
		tx.Pause(4)
		var n int
		for {
			m, err := tx.Recv(ctx)
			if err != nil {
				return
			}
			switch m.Name {
			case MsgDUM:
				n += len(m.Payload)
			case MsgDPM:
				t.Error("DPM must not reach the handler")
			case MsgAME:
				tx.StartMessage()
				tx.Send(ctx, nil, []byte(strconv.Itoa(n)))
				tx.EndMessage(Result{})
				tx.End(context.Background(), Result{})
				return
			}
			if n >= 4 {
				select {
				case <-resumed:
				default:
					time.Sleep(100 * time.Millisecond)
					close(resumed)
					tx.Resume(0)
				}
			}
		}
	}), Negotiate: acceptProfile}
	cl := dialTest(t, startServer(t, srv))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := cl.Start(ctx, newGroup(t, cl))
	if err != nil {
		t.Fatal(err)
	}
	tx.StartMessage()
	if corked {
		tx.Cork()
	}
	// Let the DWP arrive before sending.
	time.Sleep(50 * time.Millisecond)
	if _, err := tx.Send(ctx, nil, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	off, err := tx.Send(ctx, nil, []byte("678"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed:
	default:
		t.Fatal("Send returned while paused")
	}
	if off != 5 {
		t.Fatalf("offset %d, want 5", off)
	}
	tx.EndMessage(Result{})
	if corked {
		tx.Uncork()
	}
	var got string
	for {
		m, err := tx.Recv(ctx)
		if err != nil {
			break
		}
		if m.Name == MsgDUM {
			got = string(m.Payload)
		}
	}
	if got != "8" {
		t.Fatalf("server counted %q octets, want 8", got)
	}
}

// TestSlowReaderPausesPeer checks that a transaction whose application
// does not read asks the peer to pause (DWP), that the peer stops, and
// that it resumes (DWM) once the application reads.
func TestSlowReaderPausesPeer(t *testing.T) {
	chunk := bytes.Repeat([]byte("z"), 256<<10)
	// 32 MiB: far enough above the queue's soft limit that the pause lands
	// before the end although socket buffers absorb several MiB.
	const chunks = 128
	stx := make(chan *ServerTx, 1)
	cl := dialTest(t, startServer(t, streamingServer(chunk, chunks, stx)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tx, err := cl.Start(ctx, newGroup(t, cl))
	if err != nil {
		t.Fatal(err)
	}
	server := <-stx
	maxQueued := 0
	for {
		server.mu.Lock()
		stopped, sent := server.out.stopped(), server.out.offset
		server.mu.Unlock()
		tx.mu.Lock()
		queued := tx.queued
		tx.mu.Unlock()
		maxQueued = max(maxQueued, queued)
		// Paused, and either everything it sent is queued or the read
		// loop holds back the rest (backpressure: with one CPU for Go
		// code the DWP can leave late).
		if stopped && (queued == int(sent) || queued > queueHardLimit) {
			if sent < queueSoftLimit || sent >= chunks*int64(len(chunk)) {
				t.Fatalf("server stopped after %d octets", sent)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("server not paused (sent %d, queued %d)", sent, queued)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if n := recvAll(ctx, t, tx); n != chunks*len(chunk) {
		t.Fatalf("received %d octets, want %d", n, chunks*len(chunk))
	}
	if maxQueued > queueHardLimit+len(chunk) {
		t.Errorf("%d octets queued unread, more than the hard limit and a message", maxQueued)
	}
}

// TestUnreadQueueEndsTransaction: a transaction whose application reads
// nothing while more than the hard limit waits holds the connection's read
// loop for the drain wait only; then it ends with TE 400 and the
// connection serves the next transaction.
func TestUnreadQueueEndsTransaction(t *testing.T) {
	chunk := bytes.Repeat([]byte("z"), 256<<10)
	// 2 MiB, each DUM past the limits below.
	cl := dialTest(t, startServer(t, streamingServer(chunk, 8, nil)))
	cl.c.drainWait = 300 * time.Millisecond
	cl.c.queueSoft, cl.c.queueHard = 64<<10, 128<<10
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sg := newGroup(t, cl)
	tx, err := cl.Start(ctx, sg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tx.done:
	case <-ctx.Done():
		t.Fatal("transaction not ended")
	}
	var te *TxError
	if _, err := tx.Recv(ctx); !errors.As(err, &te) || te.Remote || te.Result.Code != 400 {
		t.Fatalf("Recv: %v, want our TE 400", err)
	}
	// The connection reads again: a transaction after it completes.
	tx2, err := cl.Start(ctx, sg)
	if err != nil {
		t.Fatal(err)
	}
	if n := recvAll(ctx, t, tx2); n != 8*len(chunk) {
		t.Fatalf("second transaction received %d octets, want %d", n, 8*len(chunk))
	}
}

// streamingServer answers each transaction with an adapted message of n
// DUMs of chunk, sent as fast as the flow allows; each transaction goes to
// started first when it is not nil.
func streamingServer(chunk []byte, n int, started chan<- *ServerTx) *Server {
	return &Server{Handler: HandlerFunc(func(ctx context.Context, tx *ServerTx) {
		if started != nil {
			started <- tx
		}
		tx.StartMessage()
		for range n {
			if _, err := tx.Send(ctx, nil, chunk); err != nil {
				return
			}
		}
		tx.EndMessage(Result{})
		tx.End(context.Background(), Result{})
	}), Negotiate: acceptProfile}
}

// recvAll reads tx to its end and returns the payload octets received.
func recvAll(ctx context.Context, t *testing.T, tx *Tx) int {
	t.Helper()
	n := 0
	for {
		m, err := tx.Recv(ctx)
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n += len(m.Payload)
	}
}

// TestNoGoroutineLeak checks that closing the client and the server stops
// every goroutine they started.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		srv := &Server{Handler: HandlerFunc(echoHandler), Negotiate: acceptProfile, IdleTimeout: time.Minute}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl, err := Dial(ctx, ln.Addr().String(), ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close(context.Background(), Result{})
		sg := newGroup(t, cl)
		if err := runTx(ctx, cl, sg, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Start(ctx, sg); err != nil { // left open on purpose
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServerShutdownDrains: with a DrainResult, Shutdown ends an idle
// connection at once with CE carrying it, refuses a new transaction on a
// busy connection with TE carrying it, lets the transaction in flight
// finish, and then ends that connection too.
func TestServerShutdownDrains(t *testing.T) {
	drain := Result{Code: CodeFailure, Reason: "draining"}
	release := make(chan struct{})
	srv := &Server{Handler: HandlerFunc(func(ctx context.Context, tx *ServerTx) {
		<-release
		echoHandler(ctx, tx)
	}), Negotiate: acceptProfile, DrainResult: drain}
	addr := startServer(t, srv)
	busy, idle := dialTest(t, addr), dialTest(t, addr)
	sg := newGroup(t, busy)
	newGroup(t, idle)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- runTx(ctx, busy, sg, []byte("in flight")) }()
	for srvInFlight(srv) == 0 {
		time.Sleep(time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	select {
	case <-idle.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the idle connection was not ended at once")
	}
	var ce *ConnError
	if err := idle.Err(); !errors.As(err, &ce) || !ce.Remote || ce.Result != drain {
		t.Errorf("idle connection ended with %v, want the peer's CE %v", err, drain)
	}
	tx, err := busy.Start(ctx, sg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Recv(ctx)
	var te *TxError
	if !errors.As(err, &te) || !te.Remote || te.Result != drain {
		t.Errorf("a transaction started during Shutdown ended with %v, want the peer's TE %v", err, drain)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("in-flight transaction: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-busy.Done()
}
