package ocp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// testPKI is a throwaway CA with a server and a client certificate.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	p.server = leaf(2, x509.ExtKeyUsageServerAuth)
	p.client = leaf(3, x509.ExtKeyUsageClientAuth)
	return p
}

func TestTLS(t *testing.T) {
	pki := newTestPKI(t, "ocp-test")
	other := newTestPKI(t, "other")
	srv := &Server{
		Handler:   HandlerFunc(echoHandler),
		Negotiate: acceptProfile,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pki.server},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pki.pool,
			MinVersion:   tls.VersionTLS12,
		},
	}
	addr := startServer(t, srv)
	tests := []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"verified both ways", &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}, true},
		{"unknown server CA", &tls.Config{RootCAs: other.pool, Certificates: []tls.Certificate{pki.client}}, false},
		{"no client certificate", &tls.Config{RootCAs: pki.pool}, false},
		{"client certificate from another CA", &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{other.client}}, false},
		{"plain TCP to a TLS server", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cl, err := Dial(ctx, addr, ClientConfig{TLS: tt.tls, HandshakeTimeout: time.Second})
			if !tt.ok {
				if err == nil {
					cl.Close(context.Background(), Result{})
					t.Fatal("Dial succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close(context.Background(), Result{})
			if err := runTx(ctx, cl, newGroup(t, cl), []byte("over TLS")); err != nil {
				t.Fatal(err)
			}
		})
	}
}
