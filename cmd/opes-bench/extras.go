package main

import (
	"context"
	"os"
	"sync"
	"time"
)

// ConcurrencyResult is the many-sessions check: Sessions milter sessions
// open at once against case (c), each sending PerSession messages.
type ConcurrencyResult struct {
	Sessions, PerSession int
	Messages, Errors     int
	FirstErrors          []string
	MaxOCPConns          int // most OCP connections opes-milter held at once
	Elapsed              time.Duration
	P50, P99             time.Duration
	MilterHWM            int64
}

// runConcurrency opens sessions milter sessions to opes-milter with the
// `make run` chain (max_sessions raised to sessions) and, once all are
// open, sends perSession messages on each, counting the OCP connections
// to opes-callout meanwhile.
func (e *env) runConcurrency(ctx context.Context, sessions, perSession int, mix Mix) (ConcurrencyResult, error) {
	r := ConcurrencyResult{Sessions: sessions, PerSession: perSession}
	dir, err := os.MkdirTemp(e.work, "concurrency-")
	if err != nil {
		return r, err
	}
	p, err := e.startOpes(dir, opesVariant{MaxSessions: sessions})
	if err != nil {
		return r, err
	}
	defer p.Stop()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			r.MaxOCPConns = max(r.MaxOCPConns, establishedTo(p.CalloutAddr))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	res := RunLoad(ctx, LoadOptions{
		Addr: p.MilterAddr, Sessions: sessions, PerSession: perSession, Hold: true,
		Mix: mix, Timeout: 120 * time.Second,
	})
	close(stop)
	wg.Wait()
	r.Messages, r.Errors, r.FirstErrors, r.Elapsed = res.Messages, res.Errors, res.FirstErrors, res.Elapsed
	r.P50, r.P99 = percentile(res.Latencies, 0.5), percentile(res.Latencies, 0.99)
	r.MilterHWM = vmHWM(p.Milter.Pid())
	return r, nil
}

// LargeResult is one very large message through case (b) or (c).
type LargeResult struct {
	Case       string
	Size       int64
	Parts      int
	Elapsed    time.Duration
	MilterHWM  int64 // opes-milter's peak RSS, the figure of the target
	CalloutHWM int64
	StartHWM   int64 // opes-milter's peak RSS before the message
	Replaced   bool  // the body was replaced (by the disclaimer)
	Err        string
}

// largeMaxSize is max_message_size for the large-message runs.
const largeMaxSize = "1GiB"

// largePart bounds the text parts of the large message: the disclaimer of
// (c) leaves text parts above 16 MiB alone, and the check wants it to
// rewrite the whole message.
const largePart = 12 << 20

// largeShape is the large message: one recipient, text/plain parts of at
// most largePart bytes.
func largeShape(size int64) Shape {
	return Shape{Size: size, Rcpts: 1, Parts: int((size + largePart - 1) / largePart)}
}

// runLarge sends one message of size bytes (one recipient) through a
// fresh opes-milter and opes-callout and reads their peak RSS.
func (e *env) runLarge(ctx context.Context, c Case, size int64) (LargeResult, error) {
	r := LargeResult{Case: c.ID, Size: size, Parts: largeShape(size).Parts}
	dir, err := os.MkdirTemp(e.work, "large-"+c.ID+"-")
	if err != nil {
		return r, err
	}
	p, err := e.startOpes(dir, opesVariant{PassThrough: c.Milter == milterPass, MaxMessageSize: largeMaxSize})
	if err != nil {
		return r, err
	}
	defer p.Stop()
	// One small message first, so that the OCP connections exist.
	warm := RunLoad(ctx, LoadOptions{Addr: p.MilterAddr, Messages: 1})
	r.StartHWM = vmHWM(p.Milter.Pid())
	res := RunLoad(ctx, LoadOptions{
		Addr: p.MilterAddr, Messages: 1, Timeout: 300 * time.Second,
		Mix: Mix{{Shape: largeShape(size), Weight: 1}},
	})
	r.Elapsed = res.Elapsed
	r.MilterHWM, r.CalloutHWM = vmHWM(p.Milter.Pid()), vmHWM(p.Callout.Pid())
	r.Replaced = res.Replaced > 0
	for _, errs := range [][]string{warm.FirstErrors, res.FirstErrors} {
		if len(errs) > 0 && r.Err == "" {
			r.Err = errs[0]
		}
	}
	if res.Messages != 1 && r.Err == "" {
		r.Err = "message not accepted"
	}
	return r, nil
}
