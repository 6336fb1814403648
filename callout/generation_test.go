package callout

import (
	"sync/atomic"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
)

// closingService counts its Close calls.
type closingService struct {
	fake
	closed *atomic.Int32
}

func (c *closingService) Close() error { c.closed.Add(1); return nil }

// TestReloadClosesReplacedServices: a reload closes the services it
// replaces once the transactions that use them are done, and never one
// that the new configuration still has.
func TestReloadClosesReplacedServices(t *testing.T) {
	var oldClosed, keptClosed, newClosed atomic.Int32
	old := &closingService{closed: &oldClosed}
	kept := &closingService{closed: &keptClosed}
	srv := &Server{Services: map[string]Service{"urn:a": old, "urn:b": kept}}

	// A transaction in progress holds the first generation.
	c, release, err := srv.heldChain([]ocp.Service{{URI: "urn:a"}})
	if err != nil || c.Links[0].Service != Service(old) {
		t.Fatalf("chain %v, %v", c, err)
	}
	next := &closingService{closed: &newClosed}
	srv.SetServices(map[string]Service{"urn:a": next, "urn:b": kept})
	if oldClosed.Load() != 0 {
		t.Fatal("a service was closed under a transaction that uses it")
	}
	// New transactions get the new services.
	c2, release2, err := srv.heldChain([]ocp.Service{{URI: "urn:a"}})
	if err != nil || c2.Links[0].Service != Service(next) {
		t.Fatalf("after the reload: %v, %v", c2, err)
	}
	release()
	if oldClosed.Load() != 1 {
		t.Fatalf("replaced service closed %d times once its last transaction ended, want 1", oldClosed.Load())
	}
	if keptClosed.Load() != 0 {
		t.Fatal("a service the new configuration keeps was closed")
	}
	// A second reload with nothing held closes at once; the first
	// generation is not closed twice.
	srv.SetServices(map[string]Service{})
	if newClosed.Load() != 0 {
		t.Fatal("closed while a transaction holds it")
	}
	release2()
	if newClosed.Load() != 1 || keptClosed.Load() != 1 || oldClosed.Load() != 1 {
		t.Fatalf("closes: new %d, kept %d, old %d; want 1 each", newClosed.Load(), keptClosed.Load(), oldClosed.Load())
	}
}
