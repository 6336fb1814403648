package dnstest

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestServer(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetA("a.pool.test", netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"))
	s.SetSRV("_ocp._tcp.pool.test", SRV{Priority: 10, Weight: 5, Port: 8891, Target: "a.pool.test"})
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, s.Addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, srvs, err := r.LookupSRV(ctx, "", "", "_ocp._tcp.pool.test.")
	if err != nil || len(srvs) != 1 || srvs[0].Port != 8891 || srvs[0].Target != "a.pool.test." || srvs[0].Priority != 10 || srvs[0].Weight != 5 {
		t.Fatalf("SRV: %+v %v", srvs, err)
	}
	ips, err := r.LookupNetIP(ctx, "ip4", "a.pool.test.")
	if err != nil || len(ips) != 2 {
		t.Fatalf("A: %v %v", ips, err)
	}
	if _, err := r.LookupNetIP(ctx, "ip4", "missing.pool.test."); err == nil {
		t.Fatal("a missing name resolved")
	}
}
