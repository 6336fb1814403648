package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/dnstest"
)

// TestPoolBehindSRV: opes-milter's server set is an SRV name served by a
// DNS server on loopback (the resolver key points there; nothing is asked
// of the system's resolver). While Postfix sends a steady load, a third
// callout server is added to the record and the first is removed (and then
// stopped): new transactions reach the added server and leave the removed
// one within the re-resolution interval, and no message is tempfailed or
// lost.
func TestPoolBehindSRV(t *testing.T) {
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	const name = "_ocp._tcp.pool.test"
	const interval = 500 * time.Millisecond
	cp := &calloutPool{t: t}
	for range 3 {
		cp.addrs = append(cp.addrs, FreeAddr(t))
	}
	lo := netip.MustParseAddr("127.0.0.1")
	record := func(idx ...int) []dnstest.SRV {
		var rs []dnstest.SRV
		for _, i := range idx {
			_, p, _ := net.SplitHostPort(cp.addrs[i])
			port, _ := strconv.Atoi(p)
			target := fmt.Sprintf("c%d.pool.test", i)
			dns.SetA(target, lo)
			rs = append(rs, dnstest.SRV{Priority: 10, Weight: 10, Port: uint16(port), Target: target})
		}
		return rs
	}
	dns.SetSRV(name, record(0, 1)...)
	cp.op = startOpesEdited(t, true, calloutAt("srv:"+name),
		configEdit{`resolver = ""`, fmt.Sprintf("resolver = %q", dns.Addr)},
		configEdit{`resolve_interval = "30s"`, fmt.Sprintf("resolve_interval = %q", interval.String())})
	base, err := os.ReadFile(cp.op.Config)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range cp.addrs {
		cfg := strings.Replace(string(base), fmt.Sprintf("listen = [%q]", cp.op.CalloutAddr), fmt.Sprintf("listen = [%q]", a), 1)
		path := filepath.Join(cp.op.Dir, fmt.Sprintf("callout%d.toml", i))
		writeFile(t, path, cfg, 0o644)
		cp.cfgs = append(cp.cfgs, path)
		cp.procs = append(cp.procs, nil)
		cp.start(i)
	}
	cp.pf = StartPostfix(t, PostfixOptions{Milter: cp.op.PostfixSocket()})
	var mu sync.Mutex
	var added time.Time
	var firstOnAdded time.Duration = -1
	// About 50 messages a second for 8 s.
	rep := cp.source(t, SourceOptions{Subject: "pool srv", Sessions: 50, Messages: 400, PerSecond: true}, func(*SourceRun) {
		time.Sleep(2 * time.Second)
		mu.Lock()
		added = time.Now()
		mu.Unlock()
		dns.SetSRV(name, record(0, 1, 2)...)
		// The added server's first transaction.
		if !Eventually(10*time.Second, func() bool { return strings.Contains(cp.procs[2].Output(), "transaction done") }) {
			t.Errorf("no transaction reached the added server %s", cp.addrs[2])
		}
		mu.Lock()
		firstOnAdded = time.Since(added)
		mu.Unlock()
		time.Sleep(2 * time.Second)
		removed := time.Now()
		dns.SetSRV(name, record(1, 2)...)
		// Transactions already started on the removed server finish
		// there; after the interval and their end, no new one starts.
		time.Sleep(interval + time.Second)
		served := strings.Count(cp.procs[0].Output(), "transaction done")
		time.Sleep(time.Second)
		if more := strings.Count(cp.procs[0].Output(), "transaction done") - served; more != 0 {
			t.Errorf("the removed server still got %d new transactions %v after it left the record", more, time.Since(removed))
		}
		if err := cp.procs[0].Stop(); err != nil {
			t.Errorf("stopping the removed server: %v", err)
		}
		t.Logf("added server served %v after it entered the record; removed server served %d transactions in all",
			firstOnAdded.Round(time.Millisecond), served)
	})
	delivered := cp.check(t, rep)
	t.Logf("SRV pool changed under load: %d messages sent in %v: %d delivered, %d tempfailed, %d lost",
		rep.Messages, rep.Elapsed.Round(time.Millisecond), delivered, rep.Temp, rep.Lost())
	if rep.Temp != 0 || rep.Lost() != 0 || delivered != rep.Messages {
		t.Errorf("%d delivered, %d tempfailed, %d lost of %d; want all delivered", delivered, rep.Temp, rep.Lost(), rep.Messages)
	}
	if firstOnAdded < 0 || firstOnAdded > interval+time.Second {
		t.Errorf("the added server was taken up after %v, want within the interval (%v)", firstOnAdded, interval)
	}
	if dns.Queries() == 0 {
		t.Error("the loopback resolver was never asked")
	}
}
