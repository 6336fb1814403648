package callout

import (
	"context"
	"sort"
	"sync"
	"time"
)

// DefaultHealthInterval is how often a HealthWatcher asks the backends.
const DefaultHealthInterval = 10 * time.Second

// HealthWatcher asks the server's services that depend on backends
// (HealthReporter: clamd's PING, an ICAP server's OPTIONS) at an interval,
// tells its Observer (opes_callout_backend_up{service,backend}), and
// keeps the last answers for a readiness check: a chain is only as ready
// as the backends of its services, and a scanner that is down stops the
// chains that use it, not the others.
type HealthWatcher struct {
	Server *Server
	// Observer, when set, is told each check's answers
	// (callout/promobserver exports them as opes_callout_backend_up).
	Observer HealthObserver
	// Interval between checks (DefaultHealthInterval when 0); Timeout
	// bounds one round (Interval when 0).
	Interval, Timeout time.Duration

	mu   sync.Mutex
	last map[string][]BackendHealth
}

// Run checks at once and then every Interval until ctx ends.
func (w *HealthWatcher) Run(ctx context.Context) {
	every := w.Interval
	if every <= 0 {
		every = DefaultHealthInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check asks every HealthReporter service once, concurrently, and returns
// the health of their backends by service URI.
func (w *HealthWatcher) Check(ctx context.Context) map[string][]BackendHealth {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = w.Interval
	}
	if timeout <= 0 {
		timeout = DefaultHealthInterval
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := map[string][]BackendHealth{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for uri, s := range w.Server.services() {
		hr, ok := s.(HealthReporter)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := hr.CheckHealth(ctx)
			mu.Lock()
			out[uri] = h
			mu.Unlock()
		}()
	}
	wg.Wait()
	w.mu.Lock()
	w.last = out
	w.mu.Unlock()
	if w.Observer != nil {
		w.Observer.ObserveBackends(out)
	}
	return out
}

// HealthObserver is told what a HealthWatcher's check found, by service
// URI. Implementations must be safe for concurrent use.
type HealthObserver interface {
	ObserveBackends(health map[string][]BackendHealth)
}

// Last returns the answers of the last check by service URI (nil before
// the first).
func (w *HealthWatcher) Last() map[string][]BackendHealth {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// Down returns the URIs of the services with a backend down in the last
// check, sorted.
func (w *HealthWatcher) Down() []string {
	var down []string
	for uri, hs := range w.Last() {
		for _, h := range hs {
			if !h.Up {
				down = append(down, uri)
				break
			}
		}
	}
	sort.Strings(down)
	return down
}
