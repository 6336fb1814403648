package main

import (
	"errors"
	"testing"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in   string
		want Mix
	}{
		{"10KiB/3", Mix{{Shape{10 << 10, 3, 0}, 1}}},
		{"10KiB/3:8, 100KiB:2", Mix{{Shape{10 << 10, 3, 0}, 8}, {Shape{100 << 10, 1, 0}, 2}}},
		{"512/1000:1,1MiB/1", Mix{{Shape{512, 1000, 0}, 1}, {Shape{1 << 20, 1, 0}, 1}}},
		{"100MiB/1/8", Mix{{Shape{100 << 20, 1, 8}, 1}}},
	}
	for _, tt := range tests {
		got, err := ParseMix(tt.in)
		if err != nil {
			t.Errorf("ParseMix(%q): %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseMix(%q) = %v; want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseMix(%q)[%d] = %v; want %v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
	for _, bad := range []string{"", " , ", "10XB/3", "10KiB/0", "10KiB/x", "10KiB/3:0", "10KiB/3:-1", "-5", "10KiB/1001", "1MiB/1/0", "1MiB/1/x"} {
		if _, err := ParseMix(bad); !errors.Is(err, ErrBadMix) {
			t.Errorf("ParseMix(%q) error = %v; want ErrBadMix", bad, err)
		}
	}
}

func TestMixPick(t *testing.T) {
	m := Mix{{Shape{1, 1, 0}, 3}, {Shape{2, 1, 0}, 1}}
	if m.Total() != 4 {
		t.Fatalf("Total = %d", m.Total())
	}
	counts := map[int64]int{}
	for n := range 400 {
		counts[m.Pick(n%m.Total()).Size]++
	}
	if counts[1] != 300 || counts[2] != 100 {
		t.Errorf("picks %v; want 300 and 100", counts)
	}
	if got := (Mix{{Shape{3, 2, 4}, 1}}).String(); got != "3B/2/4:1" {
		t.Errorf("String = %q", got)
	}
	if got := m.String(); got != "1B/1:3,2B/1:1" {
		t.Errorf("String = %q", got)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		text string
	}{
		{"10240", 10240, "10KiB"},
		{"10KiB", 10240, "10KiB"},
		{"100MiB", 100 << 20, "100MiB"},
		{"1GiB", 1 << 30, "1GiB"},
		{"1MB", 1e6, "1000000B"},
		{"1500", 1500, "1500B"},
		{"0", 0, "0B"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if s := formatSize(got); s != tt.text {
			t.Errorf("formatSize(%d) = %q; want %q", got, s, tt.text)
		}
	}
	for _, bad := range []string{"", "KiB", "ten", "-1", "1.5MiB", "2000GiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
}
