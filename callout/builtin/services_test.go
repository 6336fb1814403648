package builtin

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/mimetext"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestRecipientPolicy(t *testing.T) {
	p, err := NewRecipientPolicy(&mapping.RecipientPolicy{
		Deny:         []string{"blocked@example.com"},
		DenyDomains:  []string{"spam.example", ".bad.example"},
		DenyPatterns: []*regexp.Regexp{regexp.MustCompile(`^noreply-.*@`)},
		Allow:        []string{"ok@spam.example"},
		AllowDomains: []string{"partner.bad.example"},
		Reply:        ocpsmtp.Reply{Code: 550, Text: "5.1.1 {rcpt}: blocked"},
		Aliases:      map[string]string{"info@example.com": "team@example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ rcpt, want string }{
		{"<paul@example.com>", "keep"},
		{"<Blocked@Example.com>", "550 5.1.1 <Blocked@Example.com>: blocked"},
		{"<x@spam.example>", "550 5.1.1 <x@spam.example>: blocked"},
		{"<x@sub.spam.example>", "keep"}, // no leading dot: the domain itself only
		{"<x@mx.bad.example>", "550 5.1.1 <x@mx.bad.example>: blocked"},
		{"<x@bad.example>", "550 5.1.1 <x@bad.example>: blocked"},
		{"<x@partner.bad.example>", "keep"},
		{"<ok@spam.example>", "keep"},
		{"<noreply-42@example.com>", "550 5.1.1 <noreply-42@example.com>: blocked"},
		{"<info@example.com> NOTIFY=NEVER", "<team@example.com> NOTIFY=NEVER"},
	}
	for _, tt := range tests {
		a, _ := callout.ParseAddress([]byte(tt.rcpt))
		d, err := p.AdaptRcpt(context.Background(), &callout.Tx{}, a)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		switch d.Action {
		case callout.ActionKeep:
			got = "keep"
		case callout.ActionRefuse:
			got = d.Reply.String()
		case callout.ActionReplace:
			got = d.Address.String()
		}
		if got != tt.want {
			t.Errorf("%s: %s, want %s", tt.rcpt, got, tt.want)
		}
	}
	def, _ := NewRecipientPolicy(&mapping.RecipientPolicy{Deny: []string{"a@b.example"}})
	d, _ := def.AdaptRcpt(context.Background(), &callout.Tx{}, callout.Address{Addr: "a@b.example"})
	if !strings.HasPrefix(d.Reply.String(), "550 5.1.1") {
		t.Errorf("default reply %q", d.Reply.String())
	}
}

func TestSenderRewrite(t *testing.T) {
	s := NewSenderRewrite(&mapping.SenderRewrite{
		Addresses: map[string]string{"root@host.example.com": "admin@example.com"},
		Domains:   map[string]string{"laptop.example.org": "example.org"},
	})
	for in, want := range map[string]string{
		"<root@host.example.com> SIZE=1": "<admin@example.com> SIZE=1",
		"<alice@Laptop.example.org>":     "<alice@example.org>",
		"<bob@example.net>":              "",
		"<>":                             "",
	} {
		a, _ := callout.ParseAddress([]byte(in))
		d, _ := s.AdaptMail(context.Background(), &callout.Tx{}, a)
		got := ""
		if d.Action == callout.ActionReplace {
			got = d.Address.String()
		}
		if got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

func TestHeaderTag(t *testing.T) {
	now := func() time.Time { return time.Date(2025, 6, 16, 9, 12, 44, 0, time.UTC) }
	h, err := NewHeaderTag(&mapping.HeaderTag{Headers: []mapping.Header{
		{Name: "X-Client", Value: "{client_ip} ({helo}) auth={auth_user} {unknown} {queue_id}"},
		{Name: "X-Tagged", Value: "{service} at {time} for {sender} in {tx}"},
		{Name: "X-Utf8", Value: "grüße from {helo}"},
	}}, now)
	if err != nil {
		t.Fatal(err)
	}
	tx := &callout.Tx{ID: "t7", Service: "urn:tag", Client: callout.Client{IP: "192.0.2.1", Helo: "evil\r\nX-Injected: 1"},
		Sender: callout.Address{Addr: "alice@example.org"}}
	d, err := h.AdaptMessage(context.Background(), tx, callout.NewMessage([]byte("Subject: x\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"X-Client: 192.0.2.1 (evilX-Injected: 1) auth=unknown {unknown} unknown",
		"X-Tagged: urn:tag at Mon, 16 Jun 2025 09:12:44 +0000 for alice@example.org in t7",
		"X-Utf8: =?utf-8?q?gr=C3=BC=C3=9Fe_from_evilX-Injected:_1?=",
	}
	if d.Action != callout.ActionKeep || len(d.Headers) != len(want) {
		t.Fatalf("decision %+v", d)
	}
	for i, f := range d.Headers {
		if f.String() != want[i] {
			t.Errorf("field %d: %q, want %q", i, f.String(), want[i])
		}
		if err := f.Validate(); err != nil {
			t.Errorf("field %d: %v", i, err)
		}
	}
}

func TestSubjectTag(t *testing.T) {
	tests := []struct {
		name, prefix, msg, sender string
		outside                   []string
		want                      string // "" = kept
	}{
		{"plain", "[EXT]", "From: a\r\nSubject: Hello\r\n\r\nbody\r\n", "a@ext.example", nil,
			"From: a\r\nSubject: [EXT] Hello\r\n\r\nbody\r\n"},
		{"folded and encoded", "[EXT]", "Subject:\r\n =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nTo: b\r\n\r\n", "a@ext.example", nil,
			"Subject:\r\n [EXT] =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nTo: b\r\n\r\n"},
		{"already tagged", "[EXT]", "Subject: [EXT] Hello\r\n\r\n", "a@ext.example", nil, ""},
		{"inside sender", "[EXT]", "Subject: Hello\r\n\r\n", "a@mail.example.com", []string{".example.com"}, ""},
		{"inside sender exact domain", "[EXT]", "Subject: Hello\r\n\r\n", "a@example.com", []string{"example.com"}, ""},
		{"outside sender", "[EXT]", "Subject: Hello\r\n\r\n", "a@example.net", []string{"example.com"},
			"Subject: [EXT] Hello\r\n\r\n"},
		{"no subject", "[EXT]", "From: a\r\n\r\nbody\r\n", "", nil, "From: a\r\nSubject: [EXT]\r\n\r\nbody\r\n"},
		{"empty subject", "[EXT]", "Subject:\r\n\r\n", "", nil, "Subject: [EXT]\r\n\r\n"},
		{"non-ASCII prefix", "[Extern]ö", "Subject: Hi\r\n\r\n", "", nil,
			"Subject: =?utf-8?q?[Extern]=C3=B6_?=Hi\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSubjectTag(&mapping.SubjectTag{Prefix: tt.prefix, MatchSenderOutside: tt.outside})
			d, err := s.AdaptMessage(context.Background(), &callout.Tx{Sender: callout.Address{Addr: tt.sender}}, callout.NewMessage([]byte(tt.msg)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if d.Action != callout.ActionKeep {
					t.Fatalf("action %v, want keep", d.Action)
				}
				return
			}
			if d.Action != callout.ActionReplace {
				t.Fatalf("action %v (%s), want replace", d.Action, d.Reason)
			}
			if got := string(all(t, d.Message)); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	// Real samples: only the Subject line changes.
	for _, f := range []string{"alternative-qp.eml", "latin1-qp.eml", "signed.eml"} {
		orig := sample(t, f)
		d, err := NewSubjectTag(&mapping.SubjectTag{Prefix: "[EXT]"}).AdaptMessage(context.Background(), &callout.Tx{}, orig)
		if err != nil || d.Action != callout.ActionReplace {
			t.Fatalf("%s: %v %v", f, d.Action, err)
		}
		fo, _ := section(t, orig).Field("Subject")
		fn, _ := section(t, d.Message).Field("Subject")
		a, b := all(t, orig), all(t, d.Message)
		if string(a[:fo.Offset]) != string(b[:fn.Offset]) || string(a[fo.End:]) != string(b[fn.End:]) {
			t.Errorf("%s: bytes outside the Subject field changed", f)
		}
		if dec, _ := mimetext.DecodeHeader(fn.Value()); !strings.HasPrefix(dec, "[EXT] ") {
			t.Errorf("%s: subject %q", f, dec)
		}
	}
}

func TestSizeLimit(t *testing.T) {
	s, err := NewSizeLimit(&mapping.SizeLimit{Max: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		file   string
		refuse bool
	}{{"plain.eml", false}, {"attachments.eml", true}} {
		d, _ := s.AdaptMessage(ctx, &callout.Tx{}, sample(t, tt.file))
		if (d.Action == callout.ActionRefuse) != tt.refuse {
			t.Errorf("%s: %v", tt.file, d.Action)
		}
		if tt.refuse && d.Reply.String() != "552 5.3.4 Message size exceeds fixed maximum message size" {
			t.Errorf("reply %q", d.Reply.String())
		}
	}
	for in, refuse := range map[string]bool{"<a@b> SIZE=999": false, "<a@b> SIZE=1001": true, "<a@b>": false, "<a@b> SIZE=x": false} {
		a, _ := callout.ParseAddress([]byte(in))
		if d, _ := s.AdaptMail(ctx, &callout.Tx{}, a); (d.Action == callout.ActionRefuse) != refuse {
			t.Errorf("%s: %v", in, d.Action)
		}
	}
	if _, err := NewSizeLimit(&mapping.SizeLimit{}); err == nil {
		t.Error("max 0 accepted")
	}
}
