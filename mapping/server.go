package mapping

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
)

// Strategy is how a server set spreads transactions over its addresses.
type Strategy int

// The server set strategies.
const (
	// Failover uses the first healthy address, in the order given.
	Failover Strategy = iota
	// RoundRobin spreads transactions over all healthy addresses.
	RoundRobin
)

func (s Strategy) String() string {
	if s == RoundRobin {
		return "round-robin"
	}
	return "failover"
}

// ServerSet is a set of equivalent callout servers ([servers.NAME]).
type ServerSet struct {
	Name string
	// Addresses are host:port, in the order given.
	Addresses []string
	Strategy  Strategy
	// Connections is the number of OCP connections kept per address.
	Connections      int
	ConnectTimeout   time.Duration
	HandshakeTimeout time.Duration
	// IdleTimeout closes an OCP connection unused for that long.
	IdleTimeout time.Duration
	// FailureLimit consecutive failures take an address out of use (a
	// circuit breaker) until a probe succeeds; probes back off from
	// 100 ms to at most RevivalDelay apart.
	FailureLimit int
	RevivalDelay time.Duration
	// TLS is nil for plain TCP.
	TLS *TLS
	// ResolveInterval is how often the names among Addresses (host names,
	// and SRV names written "srv:_service._proto.name") are resolved
	// again; they are also resolved again when no server of the set
	// could start a transaction.
	ResolveInterval time.Duration
}

// SRVPrefix marks an SRV name in a server set's addresses.
const SRVPrefix = "srv:"

func (s *ServerSet) name() string { return s.Name }

// RoundRobin reports whether transactions are spread over the addresses
// (else the first healthy one takes them).
func (s *ServerSet) RoundRobin() bool { return s.Strategy == RoundRobin }

// ClientConfig returns the OCP client settings of the set: the dial and
// handshake timeouts, and TLS when configured.
func (s *ServerSet) ClientConfig() (ocp.ClientConfig, error) {
	c := ocp.ClientConfig{HandshakeTimeout: s.HandshakeTimeout, Dialer: &net.Dialer{Timeout: s.ConnectTimeout}}
	if s.TLS != nil {
		tc, err := s.TLS.ClientConfig()
		if err != nil {
			return ocp.ClientConfig{}, fmt.Errorf("server set %q: %w", s.Name, err)
		}
		c.TLS = tc
	}
	return c, nil
}

// TLS holds TLS settings: for a callout server set (client side) or for
// the opes-callout listener (server side). File names are as given in the
// configuration; the files were read and checked at load time.
type TLS struct {
	// CAFile verifies the peer: the callout server's certificate for a
	// client, client certificates (required when set) for a server. ""
	// means the system roots for a client and no client certificates for
	// a server.
	CAFile string
	// CertFile and KeyFile are the own certificate: required for a
	// server, optional (client certificate) for a client.
	CertFile, KeyFile string
	// ServerName overrides the name verified in the server's certificate
	// (client side only).
	ServerName string
	// InsecureSkipVerify turns verification off (client side only; for
	// tests).
	InsecureSkipVerify bool
}

// ClientConfig returns a tls.Config for connecting to a callout server.
func (t *TLS) ClientConfig() (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // an explicit, documented test setting
	}
	if t.CAFile != "" {
		pool, err := loadPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := loadKeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// ServerConfig returns a tls.Config for the opes-callout listener.
func (t *TLS) ServerConfig() (*tls.Config, error) {
	cert, err := loadKeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.CAFile != "" {
		pool, err := loadPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// maxPEMFile bounds the size of a certificate or key file.
const maxPEMFile = 1 << 20

// readPEMFile reads a certificate or key file, refusing anything but a
// regular file of reasonable size.
func readPEMFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if fi.Size() > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxPEMFile)
	}
	return os.ReadFile(name)
}

func loadPool(name string) (*x509.CertPool, error) {
	pem, err := readPEMFile(name)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(name + ": no PEM certificate found")
	}
	return pool, nil
}

// loadKeyPair loads a certificate and its key.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := readPEMFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := readPEMFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}
