// Package dnstest is a DNS server on loopback for tests: it answers A, AAAA
// and SRV questions from records the test sets and changes, over UDP and
// TCP, so that nothing a test resolves leaves the machine.
package dnstest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
)

// SRV is one SRV record (RFC 2782).
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string
}

// Server is a loopback DNS server. Names are compared without case and
// without the final dot.
type Server struct {
	Addr string // host:port, UDP and TCP

	mu      sync.Mutex
	a       map[string][]netip.Addr
	srv     map[string][]SRV
	queries int

	udp *net.UDPConn
	tcp net.Listener
	wg  sync.WaitGroup
}

// Start listens on a free loopback port (UDP and TCP on the same port).
func Start() (*Server, error) {
	for range 10 {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err != nil {
			udp.Close()
			continue
		}
		s := &Server{Addr: udp.LocalAddr().String(), a: map[string][]netip.Addr{}, srv: map[string][]SRV{}, udp: udp, tcp: tcp}
		s.wg.Add(2)
		go s.serveUDP()
		go s.serveTCP()
		return s, nil
	}
	return nil, errors.New("dnstest: no free port for UDP and TCP")
}

// Close stops the server.
func (s *Server) Close() {
	s.udp.Close()
	s.tcp.Close()
	s.wg.Wait()
}

func key(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// SetA sets the addresses of name (A and AAAA records).
func (s *Server) SetA(name string, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a[key(name)] = addrs
}

// SetSRV sets the SRV records of name.
func (s *Server) SetSRV(name string, recs ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[key(name)] = recs
}

// Queries returns how many questions were answered.
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 512)
	for {
		n, from, err := s.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if resp := s.answer(buf[:n]); resp != nil {
			if len(resp) > 512 {
				resp = truncated(resp)
			}
			s.udp.WriteToUDP(resp, from)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				resp := s.answer(q)
				if resp == nil {
					return
				}
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...))
			}
		}()
	}
}

// truncated keeps the header and question of resp and sets TC.
func truncated(resp []byte) []byte {
	end := 12
	for end < len(resp) && resp[end] != 0 {
		end += int(resp[end]) + 1
	}
	end += 5
	out := append([]byte(nil), resp[:end]...)
	out[2] |= 0x02                          // TC
	binary.BigEndian.PutUint16(out[6:], 0)  // ANCOUNT
	binary.BigEndian.PutUint16(out[8:], 0)  // NSCOUNT
	binary.BigEndian.PutUint16(out[10:], 0) // ARCOUNT
	return out
}

const (
	typeA    = 1
	typeAAAA = 28
	typeSRV  = 33
)

// answer builds the response to one query, nil for garbage.
func (s *Server) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		if l == 0 {
			i++
			break
		}
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	question := q[12 : i+4]
	name := key(strings.Join(labels, "."))

	s.mu.Lock()
	s.queries++
	addrs, hasA := s.a[name]
	srvs, hasSRV := s.srv[name]
	s.mu.Unlock()

	resp := make([]byte, 12, 512)
	copy(resp, q[:2])
	flags := uint16(0x8400) | uint16(q[2]&0x01)<<8 // QR, AA, RD copied
	if !hasA && !hasSRV {
		flags |= 3 // NXDOMAIN
	}
	binary.BigEndian.PutUint16(resp[2:], flags)
	binary.BigEndian.PutUint16(resp[4:], 1)
	resp = append(resp, question...)
	var n uint16
	rr := func(typ uint16, rdata []byte) {
		resp = append(resp, 0xc0, 12) // the question's name
		resp = binary.BigEndian.AppendUint16(resp, typ)
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 1) // TTL 1 s
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
		n++
	}
	switch qtype {
	case typeA, typeAAAA:
		for _, a := range addrs {
			if a.Is4() && qtype == typeA || a.Is6() && !a.Is4In6() && qtype == typeAAAA {
				rr(qtype, a.AsSlice())
			}
		}
	case typeSRV:
		for _, r := range srvs {
			rd := binary.BigEndian.AppendUint16(nil, r.Priority)
			rd = binary.BigEndian.AppendUint16(rd, r.Weight)
			rd = binary.BigEndian.AppendUint16(rd, r.Port)
			for _, l := range strings.Split(key(r.Target), ".") {
				rd = append(rd, byte(len(l)))
				rd = append(rd, l...)
			}
			rd = append(rd, 0)
			rr(typeSRV, rd)
		}
	}
	binary.BigEndian.PutUint16(resp[6:], n)
	return resp
}
