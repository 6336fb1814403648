package builtin

import (
	"context"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
)

func TestDisclaimer(t *testing.T) {
	const text, htmlFooter = "-- \nSent through Example Corp. Café policy applies.", "<p>Sent through Example Corp. Café policy applies.</p>"
	tests := []struct {
		file string
		// edited are the paths of the parts that get a footer; every
		// other byte must stay identical.
		edited [][]int
		// charset and cte are the expected parameters of the edited parts
		// afterwards, in the order of edited.
		charset, cte []string
	}{
		{"plain.eml", [][]int{nil}, []string{"utf-8"}, []string{"quoted-printable"}},
		{"alternative-qp.eml", [][]int{{0}, {1}}, []string{"utf-8", "utf-8"}, []string{"quoted-printable", "quoted-printable"}},
		{"nested.eml", [][]int{{0, 0, 0}, {0, 0, 1}}, []string{"utf-8", "utf-8"}, []string{"8bit", "base64"}},
		{"latin1-qp.eml", [][]int{nil}, []string{"iso-8859-1"}, []string{"quoted-printable"}},
		{"latin1-8bit.eml", [][]int{{0}, {1}}, []string{"iso-8859-1", "windows-1252"}, []string{"8bit", "quoted-printable"}},
		{"koi8r.eml", [][]int{nil}, []string{"utf-8"}, []string{"8bit"}},
		{"iso2022jp.eml", [][]int{nil}, []string{"utf-8"}, []string{"quoted-printable"}},
		{"base64-text.eml", [][]int{nil}, []string{"utf-8"}, []string{"base64"}},
		{"html-latin1.eml", [][]int{nil}, []string{"iso-8859-1"}, []string{"quoted-printable"}},
		{"attachments.eml", [][]int{{0}}, []string{"utf-8"}, []string{"quoted-printable"}},
		{"forwarded.eml", [][]int{{0}}, []string{"utf-8"}, []string{"quoted-printable"}},
		// Left alone: signed, encrypted, malformed.
		{"signed.eml", nil, nil, nil},
		{"pgp-encrypted.eml", nil, nil, nil},
		{"malformed.eml", nil, nil, nil},
		{"malformed-noboundary.eml", nil, nil, nil},
	}
	svc := NewDisclaimer(&mapping.Disclaimer{Text: text, HTML: htmlFooter})
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			orig := sample(t, tt.file)
			d, err := svc.AdaptMessage(context.Background(), &callout.Tx{}, orig)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.edited) == 0 {
				if d.Action != callout.ActionKeep {
					t.Fatalf("action %v, want keep (%s)", d.Action, d.Reason)
				}
				return
			}
			if d.Action != callout.ActionReplace {
				t.Fatalf("action %v, want replace (%s)", d.Action, d.Reason)
			}
			got := d.Message
			defer got.Close()
			mustEqualBytes(t, "bytes outside the edited parts",
				skeleton(t, got, tt.edited...), skeleton(t, orig, tt.edited...))
			for i, p := range tt.edited {
				before, after := section(t, orig, p...), section(t, got, p...)
				if after.Charset() != tt.charset[i] || after.TransferEncoding() != tt.cte[i] {
					t.Errorf("part %v: charset %s, cte %s; want %s, %s", p,
						after.Charset(), after.TransferEncoding(), tt.charset[i], tt.cte[i])
				}
				if before.Charset() == after.Charset() && before.TransferEncoding() == after.TransferEncoding() {
					mustEqualBytes(t, "unchanged part header", headerBytes(t, got, after), headerBytes(t, orig, before))
				}
				oldText, newText := decodedText(t, orig, before), decodedText(t, got, after)
				footer := strings.ReplaceAll(text, "\n", "\r\n")
				if after.MediaType == "text/html" {
					footer = htmlFooter
				}
				if !strings.Contains(newText, footer) {
					t.Errorf("part %v: footer missing in %q", p, newText)
				}
				if strings.Count(newText, footer) != 1 {
					t.Errorf("part %v: footer %d times", p, strings.Count(newText, footer))
				}
				// The old text is all there, in order, around the footer.
				if rest := strings.Replace(newText, footer, "", 1); strings.ReplaceAll(rest, "\r\n", "") != strings.ReplaceAll(oldText, "\r\n", "") {
					t.Errorf("part %v: text changed beyond the footer:\n old %q\n new %q", p, oldText, newText)
				}
				if after.MediaType == "text/html" && strings.Contains(strings.ToLower(oldText), "</body>") &&
					strings.Index(newText, footer) > strings.LastIndex(strings.ToLower(newText), "</body>") {
					t.Errorf("part %v: HTML footer after </body>", p)
				}
			}
		})
	}
}

// TestDisclaimerAppendKeepsRawBytes checks that appending to a 7bit, 8bit
// or quoted-printable part keeps the part's existing bytes as they were.
func TestDisclaimerAppendKeepsRawBytes(t *testing.T) {
	for _, tt := range []struct {
		file string
		path []int
	}{{"latin1-qp.eml", nil}, {"latin1-8bit.eml", []int{0}}, {"alternative-qp.eml", []int{0}}} {
		t.Run(tt.file, func(t *testing.T) {
			orig := sample(t, tt.file)
			d, err := NewDisclaimer(&mapping.Disclaimer{Text: "footer"}).AdaptMessage(context.Background(), &callout.Tx{}, orig)
			if err != nil || d.Action != callout.ActionReplace {
				t.Fatalf("%v %v", d.Action, err)
			}
			before, after := section(t, orig, tt.path...), section(t, d.Message, tt.path...)
			oldBody, _ := orig.Bytes(before.BodyOffset, before.End)
			newBody, _ := d.Message.Bytes(after.BodyOffset, after.End)
			if !strings.HasPrefix(string(newBody), string(oldBody)) {
				t.Errorf("old body is not a prefix of the new one:\n old %q\n new %q", oldBody, newBody)
			}
		})
	}
}

func TestDisclaimerUnrepresentableHTML(t *testing.T) {
	// "€" is not in ISO-8859-1: the HTML part, which may name its charset
	// in a meta tag, is left alone rather than transcoded.
	orig := sample(t, "html-latin1.eml")
	d, err := NewDisclaimer(&mapping.Disclaimer{Text: "x", HTML: "<p>5 €</p>"}).AdaptMessage(context.Background(), &callout.Tx{}, orig)
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != callout.ActionKeep {
		t.Fatalf("action %v, want keep", d.Action)
	}
}

func TestDisclaimerHTMLFromText(t *testing.T) {
	d := NewDisclaimer(&mapping.Disclaimer{Text: "a <b> & c\nline 2"})
	if want := "<p>a &lt;b&gt; &amp; c<br>\r\nline 2</p>\r\n"; d.html != want {
		t.Errorf("html = %q, want %q", d.html, want)
	}
}

// TestDisclaimerKeepsFinalLineBreak: a single-part text body that ends
// with a line break still does after the footer (finding F-h10-2), in every
// transfer encoding.
func TestDisclaimerKeepsFinalLineBreak(t *testing.T) {
	for _, tc := range []struct{ cte, body, want string }{
		{"7bit", "Line one.\r\nLine two.\r\n", "Line one.\r\nLine two.\r\nfooter\r\n"},
		{"quoted-printable", "Gr=FC=DFe.\r\n", "Gr=FC=DFe.\r\nfooter\r\n"},
		{"7bit", "no break", "no break\r\nfooter"},
	} {
		msg := "Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: " + tc.cte + "\r\n\r\n" + tc.body
		orig := callout.NewMessage([]byte(msg))
		d, err := NewDisclaimer(&mapping.Disclaimer{Text: "footer"}).AdaptMessage(context.Background(), &callout.Tx{}, orig)
		if err != nil || d.Action != callout.ActionReplace {
			t.Fatalf("%s: %v %v", tc.cte, d.Action, err)
		}
		root, _ := d.Message.Root()
		body, _ := d.Message.Bytes(root.BodyOffset, root.End)
		if string(body) != tc.want {
			t.Errorf("%s %q: body %q, want %q", tc.cte, tc.body, body, tc.want)
		}
	}
}
