package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	mtextproto "github.com/emersion/go-message/textproto"
)

// The security tests: TLS with verification and client certificates between
// opes-milter and opes-callout, spool files readable by their owner only,
// and logs at the default level free of message content and key material.

// pki is a throwaway certificate authority with a server certificate (for
// callout.test and 127.0.0.1) and a client certificate, and a second,
// untrusted authority with its own server and client certificates.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	otherCA, otherServerCert, otherServerKey         string
	otherClientCert, otherClientKey                  string
	keys                                             []string // every key file, to look for in logs
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{}
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	serial := int64(0)
	issue := func(name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		keyFile := write(name+"-key.pem", "PRIVATE KEY", kder, 0o600)
		p.keys = append(p.keys, keyFile)
		return cert, key, write(name+".pem", "CERTIFICATE", der, 0o644), keyFile
	}
	authority := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
		cert, key, file, _ := issue(name, &x509.Certificate{
			Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}, nil, nil)
		return cert, key, file
	}
	server := func(name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (string, string) {
		_, _, cert, key := issue(name, &x509.Certificate{
			Subject: pkix.Name{CommonName: "callout.test"}, DNSNames: []string{"callout.test"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}, ca, caKey)
		return cert, key
	}
	client := func(name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (string, string) {
		_, _, cert, key := issue(name, &x509.Certificate{
			Subject:  pkix.Name{CommonName: "opes-milter"},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, ca, caKey)
		return cert, key
	}
	ca, caKey, caFile := authority("test-ca")
	other, otherKey, otherFile := authority("other-ca")
	p.ca, p.otherCA = caFile, otherFile
	p.serverCert, p.serverKey = server("server", ca, caKey)
	p.clientCert, p.clientKey = client("client", ca, caKey)
	p.otherServerCert, p.otherServerKey = server("other-server", other, otherKey)
	p.otherClientCert, p.otherClientKey = client("other-client", other, otherKey)
	return p
}

// tlsClient is the [servers.local.tls] table of opes-milter.
type tlsClient struct{ ca, cert, key, serverName string }

func (c tlsClient) table() string {
	return fmt.Sprintf("\n[servers.local.tls]\nca_file = %q\ncert_file = %q\nkey_file = %q\nserver_name = %q\n", c.ca, c.cert, c.key, c.serverName)
}

// tapProxy records what it forwards, to show the callout connection is
// encrypted.
type tapProxy struct {
	*tcpProxy
	mu  sync.Mutex
	buf bytes.Buffer
}

// startTap forwards to target and records both directions.
func startTap(t *testing.T, target string) *tapProxy {
	t.Helper()
	tp := &tapProxy{}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	tp.tcpProxy = &tcpProxy{Addr: ln.Addr().String()}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.DialTimeout("tcp", target, 3*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			tp.accepted.Add(1)
			wg.Add(2)
			copyTap := func(dst, src net.Conn) {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 {
						tp.mu.Lock()
						tp.buf.Write(buf[:n])
						tp.mu.Unlock()
						if _, werr := dst.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				dst.Close()
				src.Close()
			}
			go copyTap(s, c)
			go copyTap(c, s)
		}
	}()
	return tp
}

func (tp *tapProxy) recorded() []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Clone(tp.buf.Bytes())
}

// TestTLSCallout runs mail through Postfix, opes-milter and opes-callout
// with mutual TLS on the OCP connection: opes-callout requires a client
// certificate from the test authority, opes-milter verifies the server's
// certificate and name. A recording proxy between them sees no plain OCP.
// Then opes-milter is reloaded into each wrong setting (no client
// certificate, a client certificate of another authority, trust in another
// authority only, a wrong server name, no TLS at all) and against a server
// with another authority's certificate: each connection fails, the message
// gets the tempfail policy's 451, and after the right configuration is back
// mail flows again. Neither daemon's log holds message content or key
// material.
func TestTLSCallout(t *testing.T) {
	p := newPKI(t)
	metrics := FreeAddr(t)
	// The proxy is started once opes-callout's address is known; the
	// configuration points opes-milter at it through a placeholder.
	const proxyMark = "127.0.0.1:1"
	good := tlsClient{ca: p.ca, cert: p.clientCert, key: p.clientKey, serverName: "callout.test"}
	op := startOpesEdited(t, false, calloutAt(proxyMark), metricsAt(metrics),
		configEdit{"", fmt.Sprintf("\n[callout.tls]\ncert_file = %q\nkey_file = %q\nca_file = %q\n", p.serverCert, p.serverKey, p.ca)},
		configEdit{"", good.table()})
	tap := startTap(t, op.CalloutAddr)
	atTap := func(cfg string) string {
		return strings.Replace(cfg, `addresses = ["`+proxyMark+`"]`, `addresses = ["`+tap.Addr+`"]`, 1)
	}
	base, err := os.ReadFile(op.Config)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(t *testing.T, cfg string) {
		t.Helper()
		cfg = atTap(cfg)
		if err := os.WriteFile(op.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		before := strings.Count(op.Milter.Output(), "configuration reloaded")
		if err := syscall.Kill(op.Milter.Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if !Eventually(10*time.Second, func() bool { return strings.Count(op.Milter.Output(), "configuration reloaded") > before }) {
			t.Fatalf("opes-milter did not reload:\n%s", op.Milter.Output())
		}
	}
	reload(t, string(base))
	pf := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()})

	// Content that must appear in no log.
	const subject, body, header = "Subject-7f3a9c1e", "Body-51d2e8b0", "Header-c4e1a7d2"
	secretMail := func(n int) Mail {
		m := DefaultMail("tls", n)
		m.Subject = subject
		m.Body = body + "\nsecond line\n"
		return m
	}
	rep := RunLoad(context.Background(), LoadOptions{Addr: pf.SMTPAddr, Prefix: "tls", Messages: 2, Mail: secretMail})
	for id, m := range rep.Delivered(t, pf.Sink, "tls", 30*time.Second) {
		if a := adaptation(m); a != "adapted" {
			t.Errorf("%s over mutual TLS: %s", id, a)
		}
	}
	if a, _, _ := rep.Counts(); a != 2 {
		t.Fatalf("over mutual TLS: %v\n%s", rep, op.Milter.Output())
	}
	wire := tap.recorded()
	if len(wire) < 5 || wire[0] != 0x16 || wire[1] != 0x03 {
		t.Errorf("the OCP connection does not start with a TLS handshake record: % x", wire[:min(len(wire), 8)])
	}
	for _, plain := range []string{"CS;", "AM-Part", "RAWDATA", subject, body} {
		if bytes.Contains(wire, []byte(plain)) {
			t.Errorf("%q travelled in the clear between opes-milter and opes-callout", plain)
		}
	}

	// A milter session with a header field carrying a token, for the log
	// check below.
	s := milterClient(t, op.MilterAddr)
	if act, err := s.Mail("<sender@example.org>", ""); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("MAIL: %+v %v", act, err)
	}
	if act, err := s.Rcpt("<rcpt@example.com>", ""); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("RCPT: %+v %v", act, err)
	}
	var h mtextproto.Header
	h.Add("Subject", subject)
	h.Add("X-Secret", header)
	if act, err := s.Header(h); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("header: %+v %v", act, err)
	}
	if _, act, err := s.BodyReadFrom(strings.NewReader(body + "\r\n")); err != nil || act.Type != gomilter.ActionAccept {
		t.Fatalf("end of message: %+v %v", act, err)
	}

	parent := t // restarted daemons belong to the whole test
	for _, c := range []struct {
		name   string
		client string // the [servers.local.tls] table, "" for plain TCP
		server bool   // opes-callout presents the other authority's certificate
	}{
		{"no client certificate", tlsClient{ca: p.ca, serverName: "callout.test"}.table(), false},
		{"client certificate of another authority", tlsClient{ca: p.ca, cert: p.otherClientCert, key: p.otherClientKey, serverName: "callout.test"}.table(), false},
		{"server certificate of an untrusted authority", good.table(), true},
		{"trust in another authority only", tlsClient{ca: p.otherCA, cert: p.clientCert, key: p.clientKey, serverName: "callout.test"}.table(), false},
		{"wrong server name", tlsClient{ca: p.ca, cert: p.clientCert, key: p.clientKey, serverName: "other.test"}.table(), false},
		{"plain TCP to the TLS listener", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := strings.Replace(string(base), good.table(), c.client, 1)
			if c.server {
				cfg = strings.Replace(cfg, fmt.Sprintf("cert_file = %q\nkey_file = %q\nca_file", p.serverCert, p.serverKey),
					fmt.Sprintf("cert_file = %q\nkey_file = %q\nca_file", p.otherServerCert, p.otherServerKey), 1)
				if err := os.WriteFile(op.Config, []byte(atTap(cfg)), 0o644); err != nil {
					t.Fatal(err)
				}
				_ = op.Callout.Stop()
				op.StartCallout(parent, "")
				defer func() {
					if err := os.WriteFile(op.Config, []byte(atTap(string(base))), 0o644); err != nil {
						t.Fatal(err)
					}
					_ = op.Callout.Stop()
					op.StartCallout(parent, "")
				}()
			}
			before := scrape(t, metrics).Sum("opes_milter_adaptation_failures_total", `class="connect"`)
			reload(t, cfg)
			o := sendViaMilter(t, milterClient(t, op.MilterAddr), "x\r\n")
			if !o.tempfailed() || o.final != nil {
				t.Errorf("want 451 at RCPT, got %v", o)
			}
			if got := scrape(t, metrics).Sum("opes_milter_adaptation_failures_total", `class="connect"`) - before; got != 1 {
				t.Errorf("connect failures counted: %v, want 1", got)
			}
		})
	}
	reload(t, string(base))
	rep = RunLoad(context.Background(), LoadOptions{Addr: pf.SMTPAddr, Prefix: "tls-again", Messages: 1, Mail: func(n int) Mail {
		m := secretMail(n)
		m.ID = "tls-again-" + strconv.Itoa(n)
		return m
	}})
	if a, _, _ := rep.Counts(); a != 1 {
		t.Fatalf("with the right configuration back: %v\n%s", rep, op.Milter.Output())
	}
	rep.Delivered(t, pf.Sink, "tls-again", 30*time.Second)

	logs := map[string]string{"opes-milter": op.Milter.Output(), "opes-callout": op.Callout.Output()}
	checkLogsClean(t, logs, []string{subject, body, header}, p.keys)
}

// checkLogsClean fails the test when a log holds one of the content tokens
// or any line of a private key file.
func checkLogsClean(t *testing.T, logs map[string]string, tokens, keyFiles []string) {
	t.Helper()
	for _, f := range keyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				tokens = append(tokens, line)
			}
		}
	}
	tokens = append(tokens, "PRIVATE KEY")
	for name, log := range logs {
		if log == "" {
			t.Errorf("%s logged nothing: the check would prove nothing", name)
		}
		for _, tok := range tokens {
			if strings.Contains(log, tok) {
				t.Errorf("the %s log at the default level contains %q", name, tok)
			}
		}
	}
}

// TestSpoolFilesPrivate sends a 2 MiB message through opes-milter (spool
// threshold 4 KiB) to opes-callout (threshold 1 MiB) and, while the callout
// works on it, checks that every spool file either daemon has open is
// mode 0600; afterwards no spool file of opes-milter is left.
func TestSpoolFilesPrivate(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "slow")
	setSlow(t, flag, 2*time.Second)
	op := startOpesEdited(t, false, append(slowService(flag),
		configEdit{`spool_memory = "1MiB"`, `spool_memory = "4KiB"`})...)
	s := milterClient(t, op.MilterAddr)
	if act, err := s.Mail("<sender@example.org>", ""); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("MAIL: %+v %v", act, err)
	}
	if act, err := s.Rcpt("<rcpt@example.com>", ""); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("RCPT: %+v %v", act, err)
	}
	var h mtextproto.Header
	h.Add("Subject", "spool")
	if _, err := s.Header(h); err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("0123456789", 7) + "\r\n"
	done := make(chan error, 1)
	go func() {
		_, act, err := s.BodyReadFrom(strings.NewReader(strings.Repeat(line, (2<<20)/len(line))))
		if err == nil && act.Type != gomilter.ActionAccept {
			err = fmt.Errorf("end of message: %+v", act)
		}
		done <- err
	}()
	seen := map[string]map[string]os.FileMode{}
	for _, proc := range []*Process{op.Milter, op.Callout} {
		proc := proc
		name := map[*Process]string{op.Milter: "opes-milter", op.Callout: "opes-callout"}[proc]
		if !Eventually(10*time.Second, func() bool {
			files := openSpoolFiles(proc.Pid())
			seen[name] = files
			return len(files) > 0
		}) {
			t.Errorf("%s never had a spool file open", name)
		}
	}
	for name, files := range seen {
		for path, mode := range files {
			t.Logf("%s: %s %v", name, path, mode)
			if mode.Perm() != 0o600 {
				t.Errorf("%s spool file %s has mode %v, want 0600", name, path, mode.Perm())
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(op.Dir, "opes-milter-spool-*"))
	if len(left) > 0 {
		t.Errorf("spool files left after the message: %v", left)
	}
}

// openSpoolFiles returns the spool files a process has open, with their
// modes: opes-milter's opes-milter-spool-* and opes-callout's
// opes-callout-* are unlinked as soon as they are created (internal/spool),
// and are found through the descriptor.
func openSpoolFiles(pid int) map[string]os.FileMode {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[string]os.FileMode{}
	for _, e := range entries {
		fd := filepath.Join(dir, e.Name())
		fi, err := os.Stat(fd)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		target, _ := os.Readlink(fd)
		if base := filepath.Base(target); strings.HasPrefix(base, "opes-milter-spool-") || strings.HasPrefix(base, "opes-callout-") {
			out[target] = fi.Mode()
		}
	}
	return out
}
