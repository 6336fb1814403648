package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the q-quantile (0 <= q <= 1) of d by the nearest-rank
// method; d need not be sorted and is not changed. It returns 0 for no
// values.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Spread is the median, minimum and maximum of a figure over runs.
type Spread struct {
	Median, Min, Max float64
	N                int
}

// spreadOf summarises the values (one per run).
func spreadOf(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// RelSpread is (max - min) / median, the noise of the figure.
func (s Spread) RelSpread() float64 {
	if s.Median == 0 {
		return 0
	}
	return (s.Max - s.Min) / s.Median
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
