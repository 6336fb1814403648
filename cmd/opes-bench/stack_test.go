package main

import (
	"slices"
	"testing"
	"time"
)

func TestSliceSizes(t *testing.T) {
	tests := []struct {
		messages, n int
		want        []int
	}{
		{3000, 1, []int{3000}},
		{3000, 6, []int{500, 500, 500, 500, 500, 500}},
		{10, 4, []int{3, 3, 2, 2}},
		{2, 5, []int{1, 1}}, // never an empty slice
		{5, 0, []int{5}},
	}
	for _, tt := range tests {
		got := sliceSizes(tt.messages, tt.n)
		if !slices.Equal(got, tt.want) {
			t.Errorf("sliceSizes(%d, %d) = %v, want %v", tt.messages, tt.n, got, tt.want)
		}
	}
}

func TestSliceOrder(t *testing.T) {
	order := []string{"a", "b", "c"}
	want := [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"a", "b", "c"}, {"c", "b", "a"}}
	for k, w := range want {
		if got := sliceOrder(order, k); !slices.Equal(got, w) {
			t.Errorf("slice %d: %v, want %v", k, got, w)
		}
	}
	if !slices.Equal(order, []string{"a", "b", "c"}) {
		t.Errorf("sliceOrder changed its argument: %v", order)
	}
}

// TestAddRun: the slices of one case add up to one run whose CPU per
// message is that of all its messages.
func TestAddRun(t *testing.T) {
	slice := func(msgs int, milter, pf time.Duration, hwm int64) Run {
		return Run{Case: "postfix+d", Messages: msgs, Elapsed: time.Second, Usage: []Usage{
			{Name: "opes-milter", CPU: milter, Peaks: []Peak{{Comm: "opes-milter", Procs: 1, HWM: hwm}}},
			{Name: "postfix", CPU: pf, Peaks: []Peak{{Comm: "smtpd", Procs: 10, HWM: 5}}},
		}}
	}
	var total Run
	a := slice(500, 400*time.Millisecond, 2*time.Second, 100)
	b := slice(499, 600*time.Millisecond, 3*time.Second, 300)
	b.Errors, b.FirstErrors = 1, []string{"one lost"}
	total = addRun(total, a)
	total = addRun(total, b)
	if total.Case != "postfix+d" || total.Messages != 999 || total.Errors != 1 || total.Elapsed != 2*time.Second {
		t.Fatalf("total %+v", total)
	}
	if !slices.Equal(total.FirstErrors, []string{"one lost"}) {
		t.Errorf("errors %q", total.FirstErrors)
	}
	if got := total.CPU(); got != 6*time.Second {
		t.Errorf("CPU %v, want 6s", got)
	}
	if got := total.Usage[0]; got.CPU != time.Second || got.MaxHWM() != 300 {
		t.Errorf("opes-milter %+v", got)
	}
	if a.Usage[0].Peaks[0].HWM != 100 {
		t.Errorf("addRun changed the first slice's peaks: %+v", a.Usage[0].Peaks)
	}
}

// TestSideBySide: every case runs side by side but the ones whose own pace
// decides their figures.
func TestSideBySide(t *testing.T) {
	alone := map[string]bool{"clamd": true, "spamd": true, "spamc": true}
	for _, c := range allCases() {
		if got := c.sideBySide(); got == alone[c.ID] {
			t.Errorf("%s: sideBySide %v", c.ID, got)
		}
	}
}
