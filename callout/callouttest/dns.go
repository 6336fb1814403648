package callouttest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNS is a resolver for tests on loopback (UDP and TCP on the same port):
// it answers the TXT and A records it was given and NXDOMAIN for every
// other name, so that nothing a test resolves leaves the machine.
type DNS struct {
	// Addr is "127.0.0.1:port".
	Addr string

	mu  sync.Mutex
	txt map[string][]string
	a   map[string][]string
}

// StartDNS starts a DNS server with the TXT records txt (name → values;
// names without the final dot, any case) and stops it when the test ends.
func StartDNS(t testing.TB, txt map[string][]string) *DNS {
	t.Helper()
	d := &DNS{txt: map[string][]string{}, a: map[string][]string{}}
	for n, v := range txt {
		d.SetTXT(n, v...)
	}
	// UDP and TCP on the same port: retry when the TCP port is taken.
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		if ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(port))); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = ln.Addr().String()
	udp := &dns.Server{PacketConn: pc, Handler: d}
	tcp := &dns.Server{Listener: ln, Handler: d}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return d
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

// SetTXT replaces the TXT records of name.
func (d *DNS) SetTXT(name string, values ...string) {
	d.mu.Lock()
	d.txt[canon(name)] = values
	d.mu.Unlock()
}

// SetA replaces the A records of name.
func (d *DNS) SetA(name string, addrs ...string) {
	d.mu.Lock()
	d.a[canon(name)] = addrs
	d.mu.Unlock()
}

func canon(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	d.mu.Lock()
	txt, okT := d.txt[name]
	a, okA := d.a[name]
	d.mu.Unlock()
	switch {
	case !okT && !okA:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeTXT:
		for _, v := range txt {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: split255(v)})
		}
	case q.Qtype == dns.TypeA:
		for _, v := range a {
			if ip := net.ParseIP(v).To4(); ip != nil {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip})
			}
		}
	}
	w.WriteMsg(m)
}

// split255 cuts a TXT value into the character-strings of at most 255
// octets a record holds.
func split255(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}
