package bridge_test

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/internal/dnstest"
)

// breakerSeries returns the value of each server's
// opes_milter_circuit_breaker_open series in reg.
func breakerSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "opes_milter_circuit_breaker_open" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "server" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// portOf returns the port of a host:port.
func portOf(t *testing.T, addr string) uint16 {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

// TestServerSetBehindSRV: a server set named by an SRV record follows the
// record as it changes (re-resolved every ResolveInterval, asking the
// configured resolver, a DNS server on loopback): lower priority first,
// a target removed is no longer used, one added takes the new transactions.
func TestServerSetBehindSRV(t *testing.T) {
	a := startCallout(t, standardScript())
	b := startCallout(t, standardScript())
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	lo := netip.MustParseAddr("127.0.0.1")
	dns.SetA("a.pool.test", lo)
	dns.SetA("b.pool.test", lo)
	const name = "_ocp._tcp.pool.test"
	dns.SetSRV(name, dnstest.SRV{Priority: 10, Weight: 1, Port: portOf(t, a.Addr), Target: "a.pool.test"},
		dnstest.SRV{Priority: 20, Weight: 1, Port: portOf(t, b.Addr), Target: "b.pool.test"})
	p := testPolicy("srv:"+name, skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.ResolveInterval = 200 * time.Millisecond
	p.Resolver = dns.Addr
	reg := prometheus.NewRegistry()
	m := startMilter(t, p, bridge.WithMetrics(bridge.NewMetrics(reg)))
	send := func() {
		t.Helper()
		s := m.session(t)
		acts, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
		if acts[0].Type != ActionContinue {
			t.Fatalf("rcpt = %+v", acts[0])
		}
		wantFinal(t, final, ActionAccept)
		if len(findMods(mods, ActionAddHeader, "X-Test")) != 1 {
			t.Fatalf("not adapted: %+v", mods)
		}
	}
	for range 3 {
		send()
	}
	if na, nb := len(a.Messages()), len(b.Messages()); na == 0 || nb != 0 {
		t.Fatalf("priority 10 then 20: a saw %d messages, b %d", na, nb)
	}
	// Both discovered servers have their breaker series, at 0, before any
	// breaker event.
	aAddr, bAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(portOf(t, a.Addr)))), net.JoinHostPort("127.0.0.1", strconv.Itoa(int(portOf(t, b.Addr))))
	got := breakerSeries(t, reg)
	if _, ok := got["srv:"+name]; ok || len(got) != 2 {
		t.Fatalf("breaker series %v; want one per server, none for the record's name", got)
	}
	if va, ok := got[aAddr]; !ok || va != 0 {
		t.Fatalf("breaker series %v; want %s and %s at 0", got, aAddr, bAddr)
	}
	if vb, ok := got[bAddr]; !ok || vb != 0 {
		t.Fatalf("breaker series %v; want %s and %s at 0", got, aAddr, bAddr)
	}
	// a leaves the pool, b stays: within the interval b takes the traffic.
	dns.SetSRV(name, dnstest.SRV{Priority: 20, Weight: 1, Port: portOf(t, b.Addr), Target: "b.pool.test"})
	changed := time.Now()
	for deadline := changed.Add(5 * time.Second); len(b.Messages()) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		send()
	}
	took := time.Since(changed)
	before := len(a.Messages())
	for range 3 {
		send()
	}
	if len(a.Messages()) != before || len(b.Messages()) == 0 {
		t.Fatalf("after a left the record: a saw %d more messages, b %d", len(a.Messages())-before, len(b.Messages()))
	}
	// The series of the server that left are gone with it.
	got = breakerSeries(t, reg)
	if _, ok := got[aAddr]; ok {
		t.Fatalf("breaker series after a left: %v", got)
	}
	if _, ok := got[bAddr]; !ok {
		t.Fatalf("breaker series after a left: %v", got)
	}
	t.Logf("traffic followed the SRV record within %v", took.Round(time.Millisecond))
	if dns.Queries() == 0 {
		t.Fatal("the configured resolver was never asked")
	}
}

// TestServerSetHostName: a host name stands for all of its addresses, and
// a name that does not resolve (yet) leaves the set empty: the message is
// tempfailed, and served once the name resolves.
func TestServerSetHostName(t *testing.T) {
	a := startCallout(t, standardScript())
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	p := testPolicy(net.JoinHostPort("callout.pool.test", strconv.Itoa(int(portOf(t, a.Addr)))), skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.ResolveInterval = 200 * time.Millisecond
	p.Resolver = dns.Addr
	m := startMilter(t, p)
	s := m.session(t)
	_, _, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
	wantTempfail(t, final)
	dns.SetA("callout.pool.test", netip.MustParseAddr("127.0.0.1"))
	// Within a few resolve intervals the set has its server.
	var mods []ModifyAction
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		s = m.session(t)
		_, mods, final = sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
		if final.Type == ActionAccept || time.Now().After(deadline) {
			break
		}
	}
	wantFinal(t, final, ActionAccept)
	if len(findMods(mods, ActionAddHeader, "X-Test")) != 1 {
		t.Fatalf("not adapted: %+v", mods)
	}
}
