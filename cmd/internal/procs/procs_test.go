package procs

import "testing"

func TestChoose(t *testing.T) {
	for _, c := range []struct {
		n, goDefault int
		envSet       bool
		want         int
	}{
		{0, 1, false, 1},
		{0, 2, false, 1},
		{0, 3, false, 2},
		{0, 16, false, 8},
		{0, 2, true, 2}, // GOMAXPROCS=2 in the environment
		{3, 16, false, 3},
		{3, 2, true, 3}, // max_procs wins over the environment
	} {
		if got := Choose(c.n, c.goDefault, c.envSet); got != c.want {
			t.Errorf("Choose(%d, %d, %v) = %d, want %d", c.n, c.goDefault, c.envSet, got, c.want)
		}
	}
}
