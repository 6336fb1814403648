package callout_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/callout/callouttest"
	"github.com/opes-milter/opes-milter/internal/syncbuf"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestServerNegotiation(t *testing.T) {
	policy, _ := builtin.NewRecipientPolicy(&mapping.RecipientPolicy{Deny: []string{"x@example.com"}})
	disc := builtin.NewDisclaimer(&mapping.Disclaimer{Text: "footer"})
	srv := &callout.Server{Services: map[string]callout.Service{"urn:policy": policy, "urn:disclaimer": disc}}
	addr := serve(t, srv)
	tests := []struct {
		name  string
		uris  []string
		offer ocpsmtp.Profile
		want  ocpsmtp.Profile // zero URI: refused
	}{
		{"policy only", []string{"urn:policy"}, receiverOffer,
			ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT}}},
		{"both", []string{"urn:disclaimer", "urn:policy"}, receiverOffer,
			ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA}}},
		{"RCPT offered informative only", []string{"urn:policy"},
			ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Informative: []ocpsmtp.Part{ocpsmtp.PartRCPT}},
			ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Informative: []ocpsmtp.Part{ocpsmtp.PartRCPT}}},
		{"data offered as sections and RAWDATA", []string{"urn:disclaimer"},
			ocpsmtp.Profile{URI: ocpsmtp.SenderURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartSECTIONS, ocpsmtp.PartRAWDATA, "X-FUTURE"}},
			ocpsmtp.Profile{URI: ocpsmtp.SenderURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}},
		{"unknown service", []string{"urn:nope"}, receiverOffer, ocpsmtp.Profile{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cl, err := ocp.Dial(ctx, addr, ocp.ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close(context.Background(), ocp.Result{})
			var svcs []ocp.Service
			for _, u := range tt.uris {
				svcs = append(svcs, ocp.Service{URI: u})
			}
			_, f, err := cl.NewServiceGroup(ctx, svcs, []ocp.Feature{tt.offer.Feature()})
			if tt.want.URI == "" {
				if err == nil {
					t.Fatalf("negotiated %v, want refusal", f)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := ocpsmtp.ParseProfile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(partStrs(got.Adaptive), ",") != strings.Join(partStrs(tt.want.Adaptive), ",") ||
				strings.Join(partStrs(got.Informative), ",") != strings.Join(partStrs(tt.want.Informative), ",") || got.URI != tt.want.URI {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func partStrs(ps []ocpsmtp.Part) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// TestServerMessageOverOCP sends real samples through the server with a
// chain (subject-tag, disclaimer, header-tag) and checks that the adapted
// RAWDATA is what the chain produces when called directly.
func TestServerMessageOverOCP(t *testing.T) {
	tag, _ := builtin.NewHeaderTag(&mapping.HeaderTag{Headers: []mapping.Header{{Name: "X-Tag", Value: "{client_ip} {helo} {sender}"}}}, nil)
	services := map[string]callout.Service{
		"urn:subject":    builtin.NewSubjectTag(&mapping.SubjectTag{Prefix: "[EXT]"}),
		"urn:disclaimer": builtin.NewDisclaimer(&mapping.Disclaimer{Text: "-- \nfooter"}),
		"urn:tag":        tag,
	}
	uris := []string{"urn:subject", "urn:disclaimer", "urn:tag"}
	addr := serve(t, &callout.Server{Services: services, Spool: callout.SpoolOptions{Threshold: 1024, Dir: t.TempDir()}})
	for _, file := range []string{"plain.eml", "nested.eml", "signed.eml", "attachments.eml"} {
		t.Run(file, func(t *testing.T) {
			orig := callout.NewMessage(callouttest.Sample(t, file))
			raw := string(callouttest.Bytes(t, orig))
			x := process(t, addr, ocp.ClientConfig{}, uris, receiverOffer, envelope(raw, "<bob@example.com>"))
			if x.End != nil || !x.AME {
				t.Fatalf("transaction ended: %v (AME %v)", x.End, x.AME)
			}
			chain := &callout.Chain{}
			for _, u := range uris {
				chain.Links = append(chain.Links, callout.Link{URI: u, Service: services[u]})
			}
			want, err := chain.AdaptMessage(context.Background(), &callout.Tx{Sender: callout.Address{Addr: "alice@example.org"}}, orig)
			if err != nil {
				t.Fatal(err)
			}
			wantRaw := raw
			if want.Action == callout.ActionReplace {
				wantRaw = string(callouttest.Bytes(t, want.Message))
			}
			callouttest.EqualBytes(t, "adapted RAWDATA", x.Adapted, []byte(wantRaw))
			last := x.Answers[len(x.Answers)-1]
			var hdr []string
			for _, m := range x.Answers {
				if d, _ := ocpsmtp.ParseData(m); d.AddHeader != "" {
					hdr = append(hdr, d.AddHeader)
				}
			}
			if len(hdr) != 1 || hdr[0] != "X-Tag: 192.0.2.1 mail.example.org alice@example.org" {
				t.Errorf("Add-Header %q (last answer %v)", hdr, params(last))
			}
		})
	}
}

func TestServerRecipientsAndSender(t *testing.T) {
	policy, _ := builtin.NewRecipientPolicy(&mapping.RecipientPolicy{
		Deny: []string{"blocked@example.com"}, Aliases: map[string]string{"info@example.com": "team@example.com"}})
	rewrite := builtin.NewSenderRewrite(&mapping.SenderRewrite{Domains: map[string]string{"example.org": "example.net"}})
	limit, _ := builtin.NewSizeLimit(&mapping.SizeLimit{Max: 1000})
	small, _ := builtin.NewSizeLimit(&mapping.SizeLimit{Max: 50})
	addr := serve(t, &callout.Server{Services: map[string]callout.Service{"urn:p": policy, "urn:r": rewrite, "urn:s": limit, "urn:s50": small}})
	parts := envelope("Subject: x\r\n\r\nhi\r\n", "<ok@example.com>", "<blocked@example.com> NOTIFY=NEVER", "<info@example.com>")
	x := process(t, addr, ocp.ClientConfig{}, []string{"urn:r", "urn:p", "urn:s"}, receiverOffer, parts)
	if x.End != nil {
		t.Fatal(x.End)
	}
	var got []string
	for _, m := range x.Answers {
		d, _ := ocpsmtp.ParseData(m)
		switch {
		case m.Name == ocp.MsgDUY:
			got = append(got, "DUY")
		case d.SMTPError != "":
			got = append(got, string(d.Part)+" error "+d.SMTPError)
		default:
			got = append(got, string(d.Part)+" "+string(m.Payload))
		}
	}
	want := []string{
		"MAIL <alice@example.net> SIZE=100",
		"DUY",
		"RCPT error 550 5.1.1 Recipient address rejected",
		"RCPT <team@example.com>",
		"DUY",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("answers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// SIZE=100 is above the limit of 50: MAIL is refused at once.
	limited := process(t, addr, ocp.ClientConfig{}, []string{"urn:s50"}, receiverOffer, parts[:3])
	if len(limited.Answers) != 1 || !strings.Contains(params(limited.Answers[0])[1], "552 5.3.4") {
		t.Errorf("size limit at MAIL: %v", limited.Answers)
	}
}

func TestServerFailures(t *testing.T) {
	srv := &callout.Server{Services: map[string]callout.Service{"urn:boom": panicky{}, "urn:s": builtin.NewSubjectTag(&mapping.SubjectTag{Prefix: "x"})}}
	addr := serve(t, srv)
	t.Run("service panic", func(t *testing.T) {
		x := process(t, addr, ocp.ClientConfig{}, []string{"urn:boom"}, receiverOffer, envelope("Subject: a\r\n\r\nb\r\n", "<a@example.com>"))
		if x.End == nil || x.End.Result.Code != 400 {
			t.Fatalf("end %v, want TE 400", x.End)
		}
	})
	t.Run("parts out of order", func(t *testing.T) {
		parts := []part{{Part: ocpsmtp.PartRAWDATA, Payload: "Subject: a\r\n\r\n"}, {Part: ocpsmtp.PartIP, Payload: "192.0.2.1"}}
		x := process(t, addr, ocp.ClientConfig{}, []string{"urn:s"}, receiverOffer, parts)
		if x.End == nil || !strings.Contains(x.End.Result.Reason, "order") {
			t.Fatalf("end %v, want TE 400 for the order", x.End)
		}
	})
}

// panicky panics on every message.
type panicky struct{}

func (panicky) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}
func (panicky) AdaptMessage(context.Context, *callout.Tx, *callout.Message) (callout.Decision, error) {
	panic("boom")
}

func TestServerTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	tag, _ := builtin.NewHeaderTag(&mapping.HeaderTag{Headers: []mapping.Header{{Name: "X-Tag", Value: "yes"}}}, nil)
	srv := &callout.Server{
		Services:  map[string]callout.Service{"urn:tag": tag},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	addr := serve(t, srv)
	x := process(t, addr, ocp.ClientConfig{TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}},
		[]string{"urn:tag"}, receiverOffer, envelope("Subject: a\r\n\r\nb\r\n", "<a@example.com>"))
	if x.End != nil || len(x.Answers) != 1 || x.Answers[0].Name != ocp.MsgDUY {
		t.Fatalf("end %v answers %v", x.End, x.Answers)
	}
	// A plain-text processor gets nowhere.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if cl, err := ocp.Dial(ctx, addr, ocp.ClientConfig{HandshakeTimeout: time.Second}); err == nil {
		cl.Close(context.Background(), ocp.Result{})
		t.Fatal("plain connection to a TLS server succeeded")
	}
}

func TestServerMaxConnections(t *testing.T) {
	srv := &callout.Server{MaxConnections: 1, Services: map[string]callout.Service{}}
	addr := serve(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := ocp.Dial(ctx, addr, ocp.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if cl, err := ocp.Dial(short, addr, ocp.ClientConfig{}); err == nil {
		cl.Close(context.Background(), ocp.Result{})
		t.Fatal("second connection accepted beyond MaxConnections")
	}
	first.Close(context.Background(), ocp.Result{})
	deadline := time.Now().Add(3 * time.Second)
	for {
		cl, err := ocp.Dial(ctx, addr, ocp.ClientConfig{HandshakeTimeout: 500 * time.Millisecond})
		if err == nil {
			cl.Close(context.Background(), ocp.Result{})
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not released: %v", err)
		}
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestServerInformativeData: with RAWDATA only informative, header fields
// still reach the processor in annotation DUMs; nothing else is sent.
func TestServerInformativeData(t *testing.T) {
	tag, _ := builtin.NewHeaderTag(&mapping.HeaderTag{Headers: []mapping.Header{{Name: "X-A", Value: "1"}, {Name: "X-B", Value: "2"}}}, nil)
	addr := serve(t, &callout.Server{Services: map[string]callout.Service{"urn:t": tag}})
	offer := ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Informative: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
	x := process(t, addr, ocp.ClientConfig{}, []string{"urn:t"}, offer, []part{{Part: ocpsmtp.PartRAWDATA, Payload: "Subject: a\r\n\r\nb\r\n"}})
	if x.End != nil || !x.AME {
		t.Fatalf("end %v ame %v", x.End, x.AME)
	}
	var got []string
	for _, m := range x.Answers {
		if m.Name != ocp.MsgDUM || len(m.Payload) != 0 {
			t.Errorf("unexpected answer %q", ocp.AppendMessage(nil, m))
		}
		got = append(got, strings.Join(params(m), " "))
	}
	if want := "AM-Part=RAWDATA Add-Header=X-A: 1|AM-Part=RAWDATA Add-Header=X-B: 2"; strings.Join(got, "|") != want {
		t.Errorf("annotations %q, want %q", strings.Join(got, "|"), want)
	}
}

// verdictService keeps every message and says why, as a scanner does.
type verdictService struct{}

func (verdictService) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}

func (verdictService) AdaptMessage(context.Context, *callout.Tx, *callout.Message) (callout.Decision, error) {
	return callout.Keep().Because("clean, score 0.50"), nil
}

// TestTransactionLineCarriesReasons: the one log line per transaction
// carries each service's reason under its configured name, so that a
// scanner's verdict needs no line of its own.
func TestTransactionLineCarriesReasons(t *testing.T) {
	var logs syncbuf.Buffer
	srv := &callout.Server{Services: map[string]callout.Service{"urn:scan": verdictService{}},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	srv.SetServiceNames(map[string]string{"urn:scan": "scanner"})
	addr := serve(t, srv)
	x := process(t, addr, ocp.ClientConfig{}, []string{"urn:scan"}, receiverOffer,
		envelope("Subject: hi\r\n\r\nhello\r\n", "<bob@example.com>"))
	if x.End != nil || !x.AME {
		t.Fatalf("transaction ended: %v (AME %v)", x.End, x.AME)
	}
	want := `reasons="scanner: clean, score 0.50"`
	// The line is written when the transaction has ended, after its AME.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the transaction's line:\n%s", want, logs.String())
		}
	}
}
