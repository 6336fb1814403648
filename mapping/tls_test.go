package mapping

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate and its key into dir.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	write := func(file, typ string, der []byte) {
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "callout.test")
	otherCert, _ := writeCert(t, dir, "other.test")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := strconv.Quote

	c := mustLoad(t, fill("[servers.s]\naddresses = [\"127.0.0.1:1\"]\n[servers.s.tls]\nca_file = "+q(cert)+
		"\ncert_file = "+q(cert)+"\nkey_file = "+q(key)+"\nserver_name = \"callout.test\"")+
		"[callout]\n[callout.tls]\ncert_file = "+q(cert)+"\nkey_file = "+q(key)+"\nca_file = "+q(cert)+"\n")
	s, _ := c.Server("s")
	if s.TLS == nil || s.TLS.ServerName != "callout.test" {
		t.Fatalf("server TLS = %+v", s.TLS)
	}
	cc, err := s.TLS.ClientConfig()
	if err != nil || cc.RootCAs == nil || len(cc.Certificates) != 1 || cc.ServerName != "callout.test" {
		t.Errorf("ClientConfig() = %+v, %v", cc, err)
	}
	sc, err := c.Callout.TLS.ServerConfig()
	if err != nil || sc.ClientCAs == nil || len(sc.Certificates) != 1 {
		t.Errorf("ServerConfig() = %+v, %v", sc, err)
	}

	runErrorCases(t, []errorCase{
		{"key does not match", fill("[servers.s]\naddresses = [\"127.0.0.1:1\"]\n[servers.s.tls]\ncert_file = " + q(otherCert) + "\nkey_file = " + q(key)),
			"t.toml:4: servers.s.tls.cert_file: tls: private key does not match public key"},
		{"ca_file without certificates", fill("[servers.s]\naddresses = [\"127.0.0.1:1\"]\n[servers.s.tls]\nca_file = " + q(junk)),
			"t.toml:4: servers.s.tls.ca_file: " + junk + ": no PEM certificate found"},
		{"callout key missing", "[callout.tls]\ncert_file = " + q(cert),
			"t.toml:1: callout.tls.key_file: cert_file needs key_file"},
	})
}
