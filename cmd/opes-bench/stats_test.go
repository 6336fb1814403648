package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}}
	for _, tt := range tests {
		if got := percentile(d, tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v; want %v", tt.q, got, tt.want)
		}
	}
	if d[0] != 100*time.Millisecond {
		t.Error("percentile sorted its input")
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{3}, Spread{3, 3, 3, 1}},
		{[]float64{5, 1, 3}, Spread{3, 1, 5, 3}},
		{[]float64{4, 1, 3, 2}, Spread{2.5, 1, 4, 4}},
	}
	for _, tt := range tests {
		if got := spreadOf(tt.in); got != tt.want {
			t.Errorf("spreadOf(%v) = %+v; want %+v", tt.in, got, tt.want)
		}
	}
	if r := (Spread{Median: 2, Min: 1, Max: 3}).RelSpread(); r != 1 {
		t.Errorf("RelSpread = %v", r)
	}
}

func TestPairedRatio(t *testing.T) {
	mk := func(msgs ...int) []Run {
		var rs []Run
		for _, m := range msgs {
			rs = append(rs, Run{Messages: m, Elapsed: time.Second})
		}
		return rs
	}
	num, den := mk(100, 300, 200), mk(200, 300, 400)
	got := pairedRatio(num, den, figTput)
	if got.Median != 0.5 || got.Min != 0.5 || got.Max != 1 || got.N != 3 {
		t.Errorf("pairedRatio = %+v", got)
	}
	d := pairedDiff(num, den, figTput)
	if d.Median != -100 || d.Min != -200 || d.Max != 0 {
		t.Errorf("pairedDiff = %+v", d)
	}
	if s := pairedRatio(mk(1), mk(0), figTput); s.N != 0 {
		t.Errorf("division by zero kept: %+v", s)
	}
}

func TestRunFigures(t *testing.T) {
	r := Run{Messages: 2000, Elapsed: 4 * time.Second, Usage: []Usage{
		{Name: "opes-milter", CPU: 1500 * time.Millisecond},
		{Name: "opes-callout", CPU: 500 * time.Millisecond},
		{Name: "load generator", Driver: true, CPU: 9 * time.Second},
	}}
	if r.Throughput() != 500 || r.CPU() != 2*time.Second || r.CPUPer1000() != 1 || figMsgTime(r) != 2 {
		t.Errorf("throughput %v, CPU %v, per 1000 %v, per message %v ms",
			r.Throughput(), r.CPU(), r.CPUPer1000(), figMsgTime(r))
	}
	if z := (Run{}); z.Throughput() != 0 || z.CPUPer1000() != 0 || figMsgTime(z) != 0 {
		t.Error("zero run")
	}
	if math.IsNaN(figP99(Run{})) {
		t.Error("NaN")
	}
}
