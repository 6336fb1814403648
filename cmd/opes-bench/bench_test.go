package main

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCase sends b.N messages (10 KiB, 3 recipients, one milter
// connection each) from 16 sessions through the cases, with every server
// in this process: (a) the no-op go-milter filter, (b) opes-milter and
// opes-callout with the pass-through chain, (c) with the `make run` chain.
// The time per operation is wall time per message at 16 sessions; run it
// with -cpuprofile to see where the servers spend their CPU (the load
// generator is in the profile too: cmd/opes-bench and go-milter's
// ClientSession).
func BenchmarkCase(b *testing.B) {
	cases := []struct {
		name  string
		start func(testing.TB) string
	}{
		{"a", startNoopServer},
		{"b", func(tb testing.TB) string { return startStack(tb, opesVariant{PassThrough: true}) }},
		{"c", func(tb testing.TB) string { return startStack(tb, opesVariant{}) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			addr := c.start(b)
			o := LoadOptions{Addr: addr, Sessions: 16, Timeout: 30 * time.Second}
			o.Messages = 64 // warm up: connections, pools, spools
			if r := RunLoad(context.Background(), o); r.Errors != 0 {
				b.Fatal(r.FirstErrors)
			}
			o.Messages = b.N
			b.ReportAllocs()
			b.ResetTimer()
			r := RunLoad(context.Background(), o)
			b.StopTimer()
			if r.Errors != 0 {
				b.Fatal(r.FirstErrors)
			}
			b.ReportMetric(float64(r.Messages)/r.Elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(percentile(r.Latencies, 0.99).Microseconds()), "p99-µs")
		})
	}
}
