package ocp

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// transcriptLines returns the unescaped lines of one side ('P' or 'S') of
// every conformance transcript, as fuzz seeds.
func transcriptLines(tb testing.TB, side byte) [][]byte {
	files, _ := filepath.Glob("../testdata/ocp/T*.txt")
	var seeds [][]byte
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		var stream []byte
		for _, line := range strings.Split(string(data), "\n") {
			if len(line) > 3 && line[0] == side && line[1:3] == ": " && line[3:] != "<EOF>" {
				stream = append(stream, unescape(line[3:])...)
			}
		}
		seeds = append(seeds, stream)
	}
	return seeds
}

// FuzzDecode checks that decoding never panics, and that whatever decodes
// re-encodes canonically to bytes that decode to the same message.
func FuzzDecode(f *testing.F) {
	for _, s := range transcriptLines(f, 'S') {
		f.Add(s)
	}
	for _, s := range transcriptLines(f, 'P') {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		d := NewDecoder(bytes.NewReader(data), Limits{MaxHeaderBytes: 4096, MaxPayload: 4096})
		d.AllowBareStar = data[0]&1 == 1
		for range 64 {
			m, err := d.Decode()
			if err != nil {
				return
			}
			wire := AppendMessage(nil, m)
			m2, err := NewDecoder(bytes.NewReader(wire), Limits{}).Decode()
			if err != nil {
				t.Fatalf("re-decoding %q: %v", wire, err)
			}
			if !reflect.DeepEqual(normalize(m), normalize(m2)) {
				t.Fatalf("round trip changed the message:\n%#v\n%#v", m, m2)
			}
			if wire2 := AppendMessage(nil, m2); !bytes.Equal(wire, wire2) {
				t.Fatalf("encoding not stable: %q vs %q", wire, wire2)
			}
		}
	})
}

// normalize makes the empty and nil forms of slices compare equal.
func normalize(m *Message) *Message {
	c := *m
	if len(c.Payload) == 0 {
		c.Payload = nil
	}
	return &c
}

// pipePeer feeds data to one end of a pipe, drains what the other end
// writes, and closes after the data.
func pipePeer(peer net.Conn, data []byte) {
	go io.Copy(io.Discard, peer)
	go func() {
		peer.Write(data)
		peer.Close()
	}()
}

// FuzzClient feeds arbitrary server bytes to the processor role. With the
// first byte odd, a valid handshake precedes them and a transaction is
// running, so the transaction machinery is exercised too. The engine must
// not panic or hang.
func FuzzClient(f *testing.F) {
	for _, s := range transcriptLines(f, 'S') {
		f.Add(append([]byte{0}, s...))
		if rest, ok := bytes.CutPrefix(s, []byte("CS;\r\nNR;\r\n")); ok {
			f.Add(append([]byte{1}, rest...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		withTx := data[0]&1 == 1
		stream := data[1:]
		if withTx {
			stream = append([]byte("CS;\r\nNR;\r\n"), stream...)
		}
		a, b := net.Pipe()
		pipePeer(b, stream)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl, err := NewClient(ctx, a, ClientConfig{HandshakeTimeout: 200 * time.Millisecond, TxIdleTimeout: -1,
			Limits: Limits{MaxHeaderBytes: 4096, MaxPayload: 4096}})
		if err != nil {
			return
		}
		defer cl.Close(context.Background(), Result{})
		if withTx {
			if sg, _, err := cl.NewServiceGroup(ctx, nil, nil); err == nil {
				if tx, err := cl.Start(ctx, sg); err == nil {
					tx.StartMessage()
					tx.Send(ctx, nil, []byte("payload"))
					tx.EndMessage(Result{})
					for {
						if _, err := tx.Recv(ctx); err != nil {
							break
						}
					}
				}
			}
		}
		select {
		case <-cl.Done():
		case <-ctx.Done():
			t.Fatal("client did not notice the end of the input")
		}
	})
}

// FuzzServer feeds arbitrary processor bytes to the server role. With the
// first byte odd, a valid handshake and service group precede them.
func FuzzServer(f *testing.F) {
	for _, s := range transcriptLines(f, 'P') {
		f.Add(append([]byte{0}, s...))
		if rest, ok := bytes.CutPrefix(s, []byte("CS;\r\nNO ();\r\n")); ok {
			f.Add(append([]byte{1}, rest...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		stream := data[1:]
		if data[0]&1 == 1 {
			stream = append([]byte("CS;\r\nNO ();\r\nSGC 1 ();\r\n"), stream...)
		}
		srv := &Server{Handler: HandlerFunc(echoHandler), Negotiate: acceptProfile,
			Limits: Limits{MaxHeaderBytes: 4096, MaxPayload: 4096}}
		a, b := net.Pipe()
		pipePeer(b, stream)
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.serveConn(a)
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("server did not notice the end of the input")
		}
	})
}
