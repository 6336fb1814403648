package ocp

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// repeatReader serves the same bytes forever.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func benchDecode(b *testing.B, m *Message) {
	wire := AppendMessage(nil, m)
	d := NewDecoder(&repeatReader{data: wire}, Limits{})
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := d.Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

func dumMessage(size int) *Message {
	return &Message{Name: MsgDUM, Anon: []Value{Num(17), Num(123456)},
		Named:   []Param{NewParam("AM-Part", Atom("RAWDATA"))},
		Payload: bytes.Repeat([]byte("x"), size), HasPayload: true}
}

func BenchmarkDecodeDUM64K(b *testing.B) { benchDecode(b, dumMessage(64<<10)) }
func BenchmarkDecodeDUM100(b *testing.B) { benchDecode(b, dumMessage(100)) }

// BenchmarkDecodeDUM100Stream decodes a stream of ~100-octet DUMs whose
// offsets all differ, as in a real transaction.
func BenchmarkDecodeDUM100Stream(b *testing.B) {
	var wire []byte
	const n = 1000
	for i := range n {
		m := dumMessage(100)
		m.Anon[1] = Num(int64(i) * 100)
		wire = AppendMessage(wire, m)
	}
	d := NewDecoder(&repeatReader{data: wire}, Limits{})
	b.SetBytes(int64(len(wire) / n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := d.Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendDUM100(b *testing.B) {
	m := dumMessage(100)
	buf := AppendMessage(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for range b.N {
		buf = AppendMessage(buf[:0], m)
	}
}

// BenchmarkLoopback64 runs echo transactions (TS, AMS, DUM of 1 KiB, AME,
// answered with AMS, DUM, AME, TE) with 64 transactions in flight over
// loopback TCP and reports tx/s.
func BenchmarkLoopback64(b *testing.B) {
	srv := &Server{Handler: HandlerFunc(echoHandler), Negotiate: acceptProfile}
	cl := dialTest(b, startServer(b, srv))
	sg := newGroup(b, cl)
	payload := bytes.Repeat([]byte("y"), 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := runTx(ctx, cl, sg, payload); err != nil && err != io.EOF {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
}
