package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
)

func TestRunLoadNoop(t *testing.T) {
	addr := startNoopServer(t)
	tests := []struct {
		name string
		o    LoadOptions
		want int
	}{
		{"messages", LoadOptions{Sessions: 4, Messages: 40}, 40},
		{"reused connections", LoadOptions{Sessions: 3, Messages: 30, PerSession: 4}, 30},
		{"mix", LoadOptions{Sessions: 2, Messages: 10, Mix: Mix{{Shape{1 << 10, 1, 0}, 1}, {Shape{200 << 10, 7, 3}, 1}}}, 10},
		{"held", LoadOptions{Sessions: 20, PerSession: 2, Hold: true}, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Addr, tt.o.Timeout = addr, 10*time.Second
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			r := RunLoad(ctx, tt.o)
			if r.Errors != 0 || r.Messages != tt.want || len(r.Latencies) != tt.want {
				t.Fatalf("messages %d, latencies %d, errors %d %v; want %d, 0 errors",
					r.Messages, len(r.Latencies), r.Errors, r.FirstErrors, tt.want)
			}
			if r.Modified != 0 || r.Bytes == 0 {
				t.Errorf("modified %d, bytes %d", r.Modified, r.Bytes)
			}
		})
	}
}

func TestRunLoadDuration(t *testing.T) {
	addr := startNoopServer(t)
	start := time.Now()
	r := RunLoad(t.Context(), LoadOptions{Addr: addr, Sessions: 2, Duration: 300 * time.Millisecond})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a 300ms run took %v", took)
	}
	if r.Messages == 0 || r.Errors != 0 {
		t.Errorf("messages %d errors %d %v", r.Messages, r.Errors, r.FirstErrors)
	}
}

// rejecter answers the second recipient with 550.
type rejecter struct {
	gomilter.NoOpMilter
	rcpts int
}

func (r *rejecter) RcptTo(string, string, gomilter.Modifier) (*gomilter.Response, error) {
	r.rcpts++
	if r.rcpts == 2 {
		return gomilter.RejectWithCodeAndReason(550, "5.1.1 no such user")
	}
	return gomilter.RespContinue, nil
}

func TestRunLoadCountsRejects(t *testing.T) {
	ln := listen(t)
	srv := gomilter.NewServer(gomilter.WithMilter(func() gomilter.Milter { return &rejecter{} }))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	r := RunLoad(t.Context(), LoadOptions{Addr: ln.Addr().String(), Sessions: 2, Messages: 6, Timeout: 5 * time.Second})
	if r.Messages != 0 || r.Errors != 6 {
		t.Fatalf("messages %d errors %d; want 0 and 6", r.Messages, r.Errors)
	}
	if len(r.FirstErrors) != maxErrorSamples || !strings.Contains(r.FirstErrors[0], "rcpt") ||
		!strings.Contains(r.FirstErrors[0], "550 5.1.1") {
		t.Errorf("errors %q", r.FirstErrors)
	}
}

func TestRunLoadNoServer(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	r := RunLoad(t.Context(), LoadOptions{Addr: addr, Messages: 3, Timeout: time.Second})
	if r.Errors != 3 || r.Messages != 0 {
		t.Fatalf("messages %d errors %d", r.Messages, r.Errors)
	}
}

func TestExpect(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		act     *gomilter.Action
		err     error
		wantErr error
		text    string
	}{
		{&gomilter.Action{Type: gomilter.ActionContinue}, nil, nil, ""},
		{nil, boom, boom, "mail: boom"},
		{&gomilter.Action{Type: gomilter.ActionTempFail}, nil, ErrUnexpectedReply, "tempfail"},
		{&gomilter.Action{Type: gomilter.ActionRejectWithCode, SMTPReply: "554 5.7.1 no\r\n"}, nil, ErrUnexpectedReply, "reply 554 5.7.1 no"},
	}
	for _, tt := range tests {
		err := expect("mail")(tt.act, tt.err)
		if !errors.Is(err, tt.wantErr) || (err != nil && !strings.Contains(err.Error(), tt.text)) {
			t.Errorf("expect(%v, %v) = %v; want %v containing %q", tt.act, tt.err, err, tt.wantErr, tt.text)
		}
	}
}

// TestRunLoadOpes drives opes-milter and opes-callout, wired in this
// process, with both chains of the bench.
func TestRunLoadOpes(t *testing.T) {
	tests := []struct {
		name     string
		v        opesVariant
		replaced int // messages with a new body (the disclaimer)
	}{
		{"pass-through", opesVariant{PassThrough: true}, 0},
		{"make run chain", opesVariant{}, 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startStack(t, tt.v)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			r := RunLoad(ctx, LoadOptions{Addr: addr, Sessions: 4, Messages: 24, Timeout: 20 * time.Second})
			if r.Errors != 0 || r.Messages != 24 {
				t.Fatalf("messages %d errors %d %v", r.Messages, r.Errors, r.FirstErrors)
			}
			// Every message gets opes-milter's trace header.
			if r.Modified != r.Messages || r.Replaced != tt.replaced {
				t.Errorf("modified %d, replaced %d of %d messages; want all, %d", r.Modified, r.Replaced, r.Messages, tt.replaced)
			}
		})
	}
}

var _ net.Conn = (*packetConn)(nil)
