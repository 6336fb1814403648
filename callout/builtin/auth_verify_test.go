package builtin

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/callouttest"
	"github.com/opes-milter/opes-milter/callout/mimetext"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// dkimKeyRecord returns the DNS TXT value publishing the public key of s.
func dkimKeyRecord(t *testing.T, s crypto.Signer) string {
	t.Helper()
	switch k := s.Public().(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k)
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	}
	t.Fatal("unknown key type")
	return ""
}

// signMessage signs m with key as d=domain, s=selector.
func signMessage(t *testing.T, m []byte, domain, selector string, key crypto.Signer) []byte {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(m), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

const authMessage = "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: signed\r\n" +
	"Date: Mon, 7 Dec 2026 01:00:00 +0000\r\nMessage-ID: <a1@example.org>\r\n\r\nHello Bob.\r\n"

func TestAuthVerify(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dns := callouttest.StartDNS(t, map[string][]string{
		"ed._domainkey.example.org":  {dkimKeyRecord(t, edKey)},
		"rsa._domainkey.example.org": {dkimKeyRecord(t, rsaKey)},
		"example.org":                {"v=spf1 ip4:192.0.2.1 -all"},
		"_dmarc.example.org":         {"v=DMARC1; p=reject"},
	})
	o := &mapping.AuthVerify{AuthservID: "mx.example.com", Resolver: dns.Addr, Timeout: 10 * time.Second,
		MaxSignatures: 5, DKIM: true, SPF: true, DMARC: true, DMARCReject: "none", Reply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 DMARC"}}
	run := func(o *mapping.AuthVerify, ip string, m []byte) (callout.Decision, *callout.Tx) {
		t.Helper()
		tx := &callout.Tx{Client: callout.Client{IP: ip, Helo: "mail.example.org"}, Sender: callout.Address{Addr: "alice@example.org"}}
		d, err := NewAuthVerify(o).AdaptMessage(context.Background(), tx, callout.NewMessage(m))
		if err != nil {
			t.Fatal(err)
		}
		return d, tx
	}
	ar := func(d callout.Decision) string {
		t.Helper()
		if len(d.Headers) != 1 || d.Headers[0].Name != "Authentication-Results" || !d.Headers[0].Top {
			t.Fatalf("fields %+v, want one Authentication-Results at the top", d.Headers)
		}
		if err := d.Headers[0].Validate(); err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(d.Headers[0].Value, "\r\n\t", " ")
	}

	signed := signMessage(t, []byte(authMessage), "example.org", "ed", edKey)
	signed = signMessage(t, signed, "example.org", "rsa", rsaKey)
	d, tx := run(o, "192.0.2.1", signed)
	want := "mx.example.com; dkim=pass header.d=example.org header.s=rsa; dkim=pass header.d=example.org header.s=ed; spf=pass smtp.mailfrom=alice@example.org; dmarc=pass header.from=example.org policy.dmarc=reject"
	if got := ar(d); got != want {
		t.Errorf("signed:\n got %s\nwant %s", got, want)
	}
	if !tx.Auth.DKIMPass() || tx.Auth.DMARC != "pass" || tx.Auth.DMARCPolicy != "reject" {
		t.Errorf("Tx.Auth = %+v", tx.Auth)
	}
	if d.Action != callout.ActionKeep {
		t.Errorf("nothing to remove, but %v", d.Action)
	}

	// One body byte changed, from an address SPF does not allow: every
	// signature fails, and so does DMARC.
	altered := bytes.Replace(signed, []byte("Hello Bob."), []byte("Hello Bob!"), 1)
	d, tx = run(o, "192.0.2.99", altered)
	got := ar(d)
	for _, w := range []string{"dkim=fail reason=", "header.s=ed", "spf=fail", "dmarc=fail"} {
		if !strings.Contains(got, w) {
			t.Errorf("altered: %s lacks %q", got, w)
		}
	}
	if tx.Auth.DKIMPass() {
		t.Error("altered message: DKIMPass")
	}
	ro := *o
	ro.DMARCReject = "reject"
	if d, _ = run(&ro, "192.0.2.99", altered); d.Action != callout.ActionRefuse || d.Reply.String() != "550 5.7.1 DMARC" {
		t.Errorf("dmarc_reject = reject: %v %q", d.Action, d.Reply.String())
	}

	// Forged results claiming our authserv-id go, others stay; the
	// signature still verifies (the forged field is not signed).
	forged := append([]byte("Authentication-Results: MX.example.com; dkim=pass header.d=bank.example\r\n"+
		"Authentication-Results: other.example; spf=pass\r\n"+
		"Authentication-Results: mx.example.com (forged);\r\n\tdmarc=pass\r\n"), signed...)
	d, _ = run(o, "192.0.2.1", forged)
	if got := ar(d); got != want {
		t.Errorf("forged: %s", got)
	}
	if d.Action != callout.ActionReplace {
		t.Fatalf("forged results: %v, want them removed", d.Action)
	}
	out := string(all(t, d.Message))
	if strings.Count(out, "Authentication-Results:") != 1 || !strings.Contains(out, "Authentication-Results: other.example; spf=pass\r\n") {
		t.Errorf("forged results:\n%s", out)
	}

	// Unsigned, no DMARC record, no IP.
	dns.SetTXT("_dmarc.example.org")
	d, _ = run(o, "", []byte(authMessage))
	if got := ar(d); got != "mx.example.com; dkim=none; spf=none reason=\"no client IP\" smtp.mailfrom=alice@example.org; dmarc=none header.from=example.org" {
		t.Errorf("unsigned: %s", got)
	}
}

func TestAuthservID(t *testing.T) {
	for in, want := range map[string]string{
		"mx.example.com; spf=pass":        "mx.example.com",
		" mx.example.com 1; none":         "mx.example.com",
		"(comment) mx.example.com (c); x": "mx.example.com",
		"\"mx.example.com\"; dkim=pass":   "mx.example.com",
		"":                                "",
		"mx.example.com":                  "mx.example.com",
		// A comment may hold ";" and come before the authserv-id (RFC
		// 8601 §2.2: [CFWS] authserv-id).
		"(a; b) mx.example.com; dkim=pass":      "mx.example.com",
		"(a (nested; c) \\) d) mx.example.com;": "mx.example.com",
		"mx.example.com(c;)1; spf=pass":         "mx.example.com",
	} {
		if got := authservID(in); got != want {
			t.Errorf("authservID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSignedMessageRespected runs auth-verify, disclaimer and subject-tag
// in one chain: a message whose signature verified leaves the chain
// byte-identical but for the added field; one whose signature failed gets
// the footer and the tag; dkim = "modify" changes a signed one too.
func TestSignedMessageRespected(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	dns := callouttest.StartDNS(t, map[string][]string{"ed._domainkey.example.org": {dkimKeyRecord(t, key)}})
	auth := NewAuthVerify(&mapping.AuthVerify{AuthservID: "mx.example.com", Resolver: dns.Addr, Timeout: 5 * time.Second,
		MaxSignatures: 5, DKIM: true, DMARCReject: "none"})
	chain := func(policy string) *callout.Chain {
		return &callout.Chain{Links: []callout.Link{
			{URI: "urn:auth", Service: auth},
			{URI: "urn:disclaimer", Service: NewDisclaimer(&mapping.Disclaimer{Text: "Footer.", DKIM: policy})},
			{URI: "urn:tag", Service: NewSubjectTag(&mapping.SubjectTag{Prefix: "[EXT]", DKIM: policy})},
		}}
	}
	signed := signMessage(t, []byte(authMessage), "example.org", "ed", key)
	run := func(c *callout.Chain, m []byte) (callout.Decision, []byte) {
		t.Helper()
		d, err := c.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage(m))
		if err != nil {
			t.Fatal(err)
		}
		if d.Action == callout.ActionReplace {
			return d, all(t, d.Message)
		}
		return d, m
	}
	d, out := run(chain("skip"), signed)
	if !bytes.Equal(out, signed) || len(d.Headers) != 1 || !strings.Contains(d.Headers[0].Value, "dkim=pass") {
		t.Errorf("verified signature: %v %+v\n%s", d.Action, d.Headers, out)
	}
	altered := bytes.Replace(signed, []byte("Hello Bob."), []byte("Hello Bob!"), 1)
	_, out = run(chain("skip"), altered)
	if !bytes.Contains(out, []byte("Footer.")) || !bytes.Contains(out, []byte("Subject: [EXT] signed")) {
		t.Errorf("failed signature: not changed:\n%s", out)
	}
	_, out = run(chain("modify"), signed)
	if !bytes.Contains(out, []byte("Footer.")) || !bytes.Contains(out, []byte("Subject: [EXT] signed")) {
		t.Errorf("dkim = modify: not changed:\n%s", out)
	}
}

// TestAuthResultsSyntax: what a signature or a DNS record holds (quotes,
// backslashes, 8-bit) cannot break the syntax of the field (go-msgauth's
// authres quotes without escaping "\").
func TestAuthResultsSyntax(t *testing.T) {
	dns := callouttest.StartDNS(t, nil)
	o := &mapping.AuthVerify{AuthservID: "mx.example.com", Resolver: dns.Addr, Timeout: 5 * time.Second,
		MaxSignatures: 5, DKIM: true, DMARCReject: "none"}
	m := "DKIM-Signature: v=1; a=rsa-sha256; d=ex\"am\\ple\xc3\xa9.org; s=s\\\"x; c=relaxed/relaxed; h=From; bh=AAAA; b=AAAA\r\n" + authMessage
	d, err := NewAuthVerify(o).AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage([]byte(m)))
	if err != nil || len(d.Headers) != 1 {
		t.Fatalf("%v %+v", err, d.Headers)
	}
	v := d.Headers[0].Value
	if strings.ContainsRune(v, '\\') || !mimetext.IsASCII([]byte(v)) || !strings.Contains(v, `header.d="ex?am?ple??.org" header.s="s??x"`) {
		t.Errorf("Authentication-Results: %s", v)
	}
}

// TestDMARCTemperror: without an aligned pass, a temporary failure of an
// aligned DKIM signature or of SPF makes DMARC temperror, not fail, so
// that dmarc_reject never refuses with 5xx because DNS had a bad moment
// (RFC 7489 §6.6.2 leaves temperror to the receiver).
func TestDMARCTemperror(t *testing.T) {
	dns := callouttest.StartDNS(t, map[string][]string{"_dmarc.example.org": {"v=DMARC1; p=reject"}})
	a := NewAuthVerify(&mapping.AuthVerify{AuthservID: "mx.example.com", Resolver: dns.Addr, Timeout: 5 * time.Second,
		MaxSignatures: 5, DKIM: true, SPF: true, DMARC: true, DMARCReject: "reject", Reply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 DMARC"}})
	root, err := callout.NewMessage([]byte(authMessage)).Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		res  callout.AuthResults
		want string
	}{
		{"dkim temperror", callout.AuthResults{DKIM: []callout.DKIMResult{{Result: "temperror", Domain: "example.org"}}, SPF: "fail", SPFDomain: "example.org"}, "temperror"},
		{"spf temperror", callout.AuthResults{SPF: "temperror", SPFDomain: "example.org"}, "temperror"},
		{"unaligned temperror", callout.AuthResults{DKIM: []callout.DKIMResult{{Result: "temperror", Domain: "other.example"}}, SPF: "fail", SPFDomain: "example.org"}, "fail"},
		{"fail", callout.AuthResults{DKIM: []callout.DKIMResult{{Result: "fail", Domain: "example.org"}}, SPF: "softfail", SPFDomain: "example.org"}, "fail"},
		{"pass beats temperror", callout.AuthResults{DKIM: []callout.DKIMResult{{Result: "temperror", Domain: "example.org"}}, SPF: "pass", SPFDomain: "example.org"}, "pass"},
	} {
		a.checkDMARC(context.Background(), root, &tc.res)
		if tc.res.DMARC != tc.want {
			t.Errorf("%s: dmarc=%s, want %s", tc.name, tc.res.DMARC, tc.want)
		}
	}
}

// TestFromCharsets: the display name's charset cannot hide the From
// address: DMARC is evaluated (a phisher's =?koi8-r?...?= name made it
// permerror, which dmarc_reject does not refuse) and dkim-sign signs.
func TestFromCharsets(t *testing.T) {
	dns := callouttest.StartDNS(t, map[string][]string{"_dmarc.example.org": {"v=DMARC1; p=reject"}})
	a := NewAuthVerify(&mapping.AuthVerify{AuthservID: "mx.example.com", Resolver: dns.Addr, Timeout: 5 * time.Second,
		MaxSignatures: 5, DKIM: true, SPF: true, DMARC: true, DMARCReject: "none"})
	dir := t.TempDir()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	writeKey(t, filepath.Join(dir, "ed.pem"), ed, false)
	signer, err := NewDKIMSign(&mapping.DKIMSign{Keys: []mapping.DKIMKey{{Domain: "example.org", Selector: "ed", KeyFile: filepath.Join(dir, "ed.pem")}},
		Headers: mapping.DefaultDKIMSignHeaders()})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"=?koi8-r?B?5M/Cxdw=?=", "=?x-unknown?Q?Bank?=", "\"Bank\""} {
		m := callout.NewMessage([]byte("From: " + name + " <ceo@example.org>\r\nSubject: hi\r\n\r\nbody\r\n"))
		root, err := m.Root()
		if err != nil {
			t.Fatal(err)
		}
		res := &callout.AuthResults{SPF: "fail", SPFDomain: "example.org"}
		a.checkDMARC(context.Background(), root, res)
		if res.DMARC != "fail" || res.FromDomain != "example.org" {
			t.Errorf("%s: dmarc=%s from %q, want fail for example.org", name, res.DMARC, res.FromDomain)
		}
		d, err := signer.AdaptMessage(context.Background(), &callout.Tx{}, m)
		if err != nil || len(d.Headers) != 1 {
			t.Errorf("%s: not signed: %v (%s)", name, err, d.Reason)
		}
	}
}

// TestDMARCMultipleFrom: a message naming several author domains (two
// From fields, or two addresses in one) is checked for each and the
// worst result counts (RFC 7489 §6.6.1), so that a second From cannot
// turn a p=reject failure into permerror, which dmarc_reject lets through.
func TestDMARCMultipleFrom(t *testing.T) {
	dns := callouttest.StartDNS(t, map[string][]string{"_dmarc.example.org": {"v=DMARC1; p=reject"},
		"_dmarc.q.example": {"v=DMARC1; p=quarantine"}})
	a := NewAuthVerify(&mapping.AuthVerify{AuthservID: "mx.example.com", Resolver: dns.Addr, Timeout: 5 * time.Second,
		MaxSignatures: 5, DKIM: true, SPF: true, DMARC: true, DMARCReject: "reject"})
	for _, tc := range []struct {
		header, spfDomain, want, from string
	}{
		{"From: x@attacker.example\r\nFrom: ceo@example.org\r\n", "attacker.example", "fail", "example.org"},
		{"From: x@attacker.example, ceo@example.org\r\n", "attacker.example", "fail", "example.org"},
		{"From: a@example.org\r\nFrom: b@mail.example.org\r\n", "example.org", "pass", "example.org"},
		{"From: a@example.org\r\nFrom: undisclosed:;\r\n", "example.org", "permerror", ""},
		{"From: a@q.example\r\nFrom: ceo@example.org\r\n", "attacker.example", "fail", "example.org"},
	} {
		root, err := callout.NewMessage([]byte(tc.header + "Subject: hi\r\n\r\nbody\r\n")).Root()
		if err != nil {
			t.Fatal(err)
		}
		res := &callout.AuthResults{SPF: "pass", SPFDomain: tc.spfDomain}
		a.checkDMARC(context.Background(), root, res)
		if res.DMARC != tc.want || res.FromDomain != tc.from {
			t.Errorf("%q: dmarc=%s from %q, want %s from %q", tc.header, res.DMARC, res.FromDomain, tc.want, tc.from)
		}
	}
}
