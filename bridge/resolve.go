package bridge

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
)

// A server set's addresses may be DNS names: "host:port" stands for every
// address the host name resolves to, "srv:_service._proto.name" for the
// targets of that SRV record (RFC 2782). The pool resolves them itself,
// with the configured resolver, when it starts, every ResolveInterval, and
// when no server of the set could start a transaction; the servers of the
// set follow: new ones are used by new transactions, removed ones finish
// their transactions and are closed. A failed resolution keeps the servers
// the set has.
//
// Order: the entries in the order given; the addresses of one host name,
// and the targets of one SRV priority, are equals, ordered anew for each
// transaction at random (by SRV weight: a target's share of first places
// is its weight's share of the priority's weights). Lower SRV priorities
// come first. strategy = "failover" takes the first healthy server of that
// order, "round-robin" rotates the order by one per transaction.

// defaultResolveInterval is used when a set names none.
const defaultResolveInterval = 30 * time.Second

// resolveTimeout bounds one resolution of a set.
const resolveTimeout = 5 * time.Second

// setConfig is a set's client settings (or why they could not be built).
type setConfig struct {
	cfg ocp.ClientConfig
	err error
}

// member is one server of a set as resolved.
type member struct {
	addr   string // IP:port, what is dialled
	host   string // the name it came from ("" for an address given as such), the TLS server name
	group  int    // servers of one group are equals
	weight int    // SRV weight
}

// hasNames reports whether set names servers by DNS name.
func hasNames(set *mapping.ServerSet) bool {
	return slices.ContainsFunc(set.Addresses, isName)
}

// isName reports whether a server address is a DNS name (an SRV record or
// a host name) that stands for the servers it resolves to.
func isName(a string) bool {
	if strings.HasPrefix(a, mapping.SRVPrefix) {
		return true
	}
	if host, _, err := net.SplitHostPort(a); err == nil {
		if _, err := netip.ParseAddr(host); err != nil {
			return true
		}
	}
	return false
}

// newResolver returns the resolver that asks the DNS server at addr, or the
// system's for "".
func newResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// resolve returns the servers of set.
func resolve(ctx context.Context, r *net.Resolver, set *mapping.ServerSet) ([]member, error) {
	var out []member
	seen := map[string]bool{}
	group := 0
	add := func(m member) {
		if !seen[m.addr] {
			seen[m.addr] = true
			out = append(out, m)
		}
	}
	lookup := func(host string) ([]netip.Addr, error) {
		ips, err := r.LookupNetIP(ctx, "ip", strings.TrimSuffix(host, ".")+".")
		if err != nil {
			return nil, err
		}
		slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
		return ips, nil
	}
	for _, a := range set.Addresses {
		if name, ok := strings.CutPrefix(a, mapping.SRVPrefix); ok {
			_, srvs, err := r.LookupSRV(ctx, "", "", name+".")
			if err != nil {
				return nil, fmt.Errorf("SRV %s: %w", name, err)
			}
			slices.SortStableFunc(srvs, func(x, y *net.SRV) int { return int(x.Priority) - int(y.Priority) })
			for i, s := range srvs {
				if i > 0 && s.Priority != srvs[i-1].Priority {
					group++
				}
				if s.Target == "." {
					continue // "service not available" (RFC 2782)
				}
				ips, err := lookup(s.Target)
				if err != nil {
					return nil, fmt.Errorf("SRV %s target %s: %w", name, s.Target, err)
				}
				for _, ip := range ips {
					add(member{addr: net.JoinHostPort(ip.String(), strconv.Itoa(int(s.Port))), host: strings.TrimSuffix(s.Target, "."),
						group: group, weight: int(s.Weight)})
				}
			}
			group++
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(host); err == nil {
			add(member{addr: a, group: group})
			group++
			continue
		}
		ips, err := lookup(host)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", host, err)
		}
		for _, ip := range ips {
			add(member{addr: net.JoinHostPort(ip.String(), port), host: host, group: group})
		}
		group++
	}
	return out, nil
}

// resolveSet resolves set and makes its servers follow.
func (pl *pool) resolveSet(set *mapping.ServerSet) error {
	ctx, cancel := context.WithTimeout(pl.ctx, resolveTimeout)
	defer cancel()
	ms, err := resolve(ctx, pl.resolver, set)
	if err != nil {
		pl.log.Warn("server set not resolved; keeping its servers", "set", set.Name, "err", err)
		return err
	}
	pl.reconcile(set, ms)
	return nil
}

// reconcile makes the servers of set those of ms, keeping the upstreams
// (connections, breaker) of the servers that stay.
func (pl *pool) reconcile(set *mapping.ServerSet, ms []member) {
	pl.mu.Lock()
	old := pl.ups[set]
	by := make(map[string]*upstream, len(old))
	for _, u := range old {
		by[u.addr] = u
	}
	ups := make([]*upstream, 0, len(ms))
	var added []string
	for _, m := range ms {
		u := by[m.addr]
		if u == nil {
			sc := pl.cfgs[set]
			u = &upstream{pl: pl, addr: m.addr, set: set, cfg: sc.cfg, err: sc.err}
			added = append(added, m.addr)
		}
		delete(by, m.addr)
		u.host, u.group, u.weight = m.host, m.group, m.weight
		ups = append(ups, u)
	}
	pl.ups[set] = ups
	pl.mu.Unlock()
	var removed []string
	for _, u := range by {
		removed = append(removed, u.addr)
		u.removed.Store(true)
		pl.drainConns(u)
	}
	pl.metrics.serversChanged(added, removed)
	if len(added)+len(removed) > 0 {
		slices.Sort(removed)
		pl.log.Info("server set resolved", "set", set.Name, "servers", len(ups), "added", added, "removed", removed)
	}
}

// resolveLoop resolves set every interval and when kicked, until the pool
// ends or is retired.
func (pl *pool) resolveLoop(set *mapping.ServerSet, kick <-chan struct{}) {
	every := set.ResolveInterval
	if every <= 0 {
		every = defaultResolveInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-pl.ctx.Done():
			return
		case <-t.C:
		case <-kick:
			if time.Since(last) < time.Second {
				continue // at most one resolution a second on failures
			}
		}
		if pl.retired.Load() {
			return
		}
		last = time.Now()
		_ = pl.resolveSet(set)
	}
}

// kickResolve asks for a resolution of set now (no server could start a
// transaction).
func (pl *pool) kickResolve(set *mapping.ServerSet) {
	if ch := pl.kicks[set]; ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// servers returns the servers of set in the order a transaction tries
// them (see above).
func (pl *pool) servers(set *mapping.ServerSet) []*upstream {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	ups := pl.ups[set]
	out := make([]*upstream, 0, len(ups))
	for i := 0; i < len(ups); {
		j := i + 1
		for j < len(ups) && ups[j].group == ups[i].group {
			j++
		}
		out = append(out, weighted(ups[i:j])...)
		i = j
	}
	if set.RoundRobin() && len(out) > 0 {
		first := pl.next[set] % len(out)
		pl.next[set]++
		out = append(out[first:], out[:first]...)
	}
	return out
}

// weighted returns equals in a random order, each place drawn by weight
// (RFC 2782: weight 0 has a small chance when others have weight).
func weighted(eq []*upstream) []*upstream {
	if len(eq) == 1 {
		return []*upstream{eq[0]}
	}
	left := slices.Clone(eq)
	out := make([]*upstream, 0, len(eq))
	for len(left) > 0 {
		sum := 0
		for _, u := range left {
			sum += u.weight*100 + 1
		}
		n := rand.IntN(sum)
		for i, u := range left {
			if n -= u.weight*100 + 1; n < 0 {
				out = append(out, u)
				left = slices.Delete(left, i, i+1)
				break
			}
		}
	}
	return out
}

// size returns the number of servers of set.
func (pl *pool) size(set *mapping.ServerSet) int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.ups[set])
}
