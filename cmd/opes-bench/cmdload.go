package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/opes-milter/opes-milter/cmd/internal/cli"
)

// cmdLoad drives one running milter and prints what it measured.
func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o LoadOptions
	o.Mix = defaultMix()
	fs.StringVar(&o.Addr, "addr", "", "milter `host:port` to drive (required)")
	fs.IntVar(&o.Sessions, "sessions", 16, "concurrent milter connections")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send; 0 = until -messages")
	fs.IntVar(&o.Messages, "messages", 0, "messages to send; 0 = until -duration")
	fs.IntVar(&o.PerSession, "per-session", 1, "messages per milter connection")
	fs.Var(mixFlag{&o.Mix}, "mix", "message shapes `SIZE/RCPTS:WEIGHT,...`")
	fs.BoolVar(&o.Hold, "hold", false, "open every session before the first message (then -per-session messages each)")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "bound on each milter reply")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		fmt.Fprintf(stderr, "opes-bench load: -addr HOST:PORT is required\n")
		return cli.ErrUsage
	}
	if o.Duration == 0 && o.Messages == 0 && !o.Hold {
		fmt.Fprintf(stderr, "opes-bench load: set -duration or -messages\n")
		return cli.ErrUsage
	}
	start := selfCPU()
	r := RunLoad(ctx, o)
	gen := selfCPU() - start
	fmt.Fprintf(stdout, "messages %d (modified %d, body replaced %d), errors %d, %.1f s, %.1f msg/s, %.1f MB/s\n",
		r.Messages, r.Modified, r.Replaced, r.Errors, r.Elapsed.Seconds(),
		float64(r.Messages)/r.Elapsed.Seconds(), float64(r.Bytes)/r.Elapsed.Seconds()/1e6)
	fmt.Fprintf(stdout, "latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		ms(percentile(r.Latencies, 0.5)), ms(percentile(r.Latencies, 0.9)),
		ms(percentile(r.Latencies, 0.99)), ms(percentile(r.Latencies, 1)))
	if r.Messages > 0 {
		fmt.Fprintf(stdout, "load generator CPU %.3f s per 1,000 messages\n", gen.Seconds()*1000/float64(r.Messages))
	}
	for _, e := range r.FirstErrors {
		fmt.Fprintf(stdout, "error: %s\n", e)
	}
	if r.Errors > 0 {
		return fmt.Errorf("%d errors", r.Errors)
	}
	return nil
}

// defaultMix is the message: 10 KiB, 3 recipients.
func defaultMix() Mix { return Mix{{Shape: Shape{Size: 10 << 10, Rcpts: 3}, Weight: 1}} }
