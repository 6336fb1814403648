package bridge

import "testing"

// TestReloadForgetsDrainedPools: a pool a reload retired is kept (Close
// waits for its draining connections) only while something of it runs;
// reloads do not pile pools up.
func TestReloadForgetsDrainedPools(t *testing.T) {
	b := New(&Policy{}, nil)
	for range 5 {
		b.Reload(&Policy{})
	}
	b.mu.Lock()
	n := len(b.retired)
	b.mu.Unlock()
	if n != 1 {
		t.Errorf("%d retired pools kept after five reloads without connections, want 1 (the last)", n)
	}
	b.Close()
}
