package builtin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/callouttest"
	"github.com/opes-milter/opes-milter/mapping"
)

// writeKey writes k as a PEM file: PKCS#8, or PKCS#1 for pkcs1.
func writeKey(t *testing.T, path string, k any, pkcs1 bool) {
	t.Helper()
	var blk *pem.Block
	if pkcs1 {
		blk = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		blk = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDKIMSign signs with an Ed25519 key (PKCS#8) and an RSA key
// (PKCS#1), by the From domain and its parent, and verifies with
// go-msgauth and with dkimpy; a domain without a key is not signed; a new
// service built from the same table reads a rotated key file.
func TestDKIMSign(t *testing.T) {
	dir := t.TempDir()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	writeKey(t, filepath.Join(dir, "ed.pem"), ed, false)
	writeKey(t, filepath.Join(dir, "rsa.pem"), rk, true)
	o := &mapping.DKIMSign{Keys: []mapping.DKIMKey{
		{Domain: "example.org", Selector: "ed", KeyFile: filepath.Join(dir, "ed.pem")},
		{Domain: "example.net", Selector: "rsa", KeyFile: filepath.Join(dir, "rsa.pem")},
	}, Headers: mapping.DefaultDKIMSignHeaders()}
	records := map[string]string{
		"ed._domainkey.example.org":  dkimKeyRecord(t, ed),
		"rsa._domainkey.example.net": dkimKeyRecord(t, rk),
	}
	sign := func(s *DKIMSign, from string) (callout.Decision, []byte) {
		t.Helper()
		m := []byte(strings.Replace(authMessage, "alice@example.org", from, 1))
		d, err := s.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage(m))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Headers) == 0 {
			return d, m
		}
		f := d.Headers[0]
		if !f.Top || f.Name != "DKIM-Signature" || f.Validate() != nil {
			t.Fatalf("field %+v (%v)", f, f.Validate())
		}
		return d, append([]byte(f.String()+"\r\n"), m...)
	}
	s, err := NewDKIMSign(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, d, s string }{
		{"alice@example.org", "example.org", "ed"},
		{"bob@mail.example.net", "example.net", "rsa"},
	} {
		_, signed := sign(s, tc.from)
		for _, w := range []string{"d=" + tc.d, "s=" + tc.s, "c=relaxed/relaxed", "h=From:From:", "Subject:Subject"} {
			if !bytes.Contains(bytes.ReplaceAll(signed, []byte("\r\n "), nil), []byte(w)) {
				t.Errorf("%s: signature lacks %q:\n%s", tc.from, w, signed)
			}
		}
		v, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: func(n string) ([]string, error) {
			return []string{records[n]}, nil
		}})
		if err != nil || len(v) != 1 || v[0].Err != nil {
			t.Errorf("%s: go-msgauth: %v %+v", tc.from, err, v)
		}
		if ok, out := callouttest.VerifyDKIMPy(t, signed, records); !ok {
			t.Errorf("%s: dkimpy: %s\n%s", tc.from, out, signed)
		}
		altered := bytes.Replace(signed, []byte("Hello Bob."), []byte("Hello Bob!"), 1)
		if ok, _ := callouttest.VerifyDKIMPy(t, altered, records); ok {
			t.Errorf("%s: dkimpy verified an altered body", tc.from)
		}
	}
	if d, _ := sign(s, "carol@example.com"); len(d.Headers) != 0 {
		t.Errorf("no key for example.com, but %+v", d.Headers)
	}

	// Rotation: the key file changes, a rebuilt service (SIGHUP) signs
	// with the new key.
	_, ed2, _ := ed25519.GenerateKey(rand.Reader)
	writeKey(t, filepath.Join(dir, "ed.pem"), ed2, false)
	s2, err := NewDKIMSign(o)
	if err != nil {
		t.Fatal(err)
	}
	_, signed := sign(s2, "alice@example.org")
	if ok, _ := callouttest.VerifyDKIMPy(t, signed, records); ok {
		t.Error("rotated key: verified with the old public key")
	}
	records["ed._domainkey.example.org"] = dkimKeyRecord(t, ed2)
	if ok, out := callouttest.VerifyDKIMPy(t, signed, records); !ok {
		t.Errorf("rotated key: %s", out)
	}
	if _, err := NewDKIMSign(&mapping.DKIMSign{Keys: []mapping.DKIMKey{{Domain: "x.example", Selector: "s", KeyFile: filepath.Join(dir, "none.pem")}}}); err == nil {
		t.Error("missing key file: no error")
	}
}
