package ocpsmtp

import (
	"fmt"
	"strings"
	"testing"
)

func TestCutSections(t *testing.T) {
	long := "--b" + strings.Repeat(" ", 70<<10)
	for _, tc := range []struct {
		name, ctype, body string
		want              string // "index=bytes|..."
	}{
		{"nested", "multipart/mixed; boundary=o",
			"pre\r\n--o\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nplain\r\n--i\r\n\r\nhtml\r\n--i--\r\n\r\n--o\r\n\r\nMZ\r\n--o--\r\nepi\r\n",
			"1=Content-Type: text/plain\r\n\r\nfirst|2.1=\r\nplain|2.2=\r\nhtml|3=\r\nMZ"},
		{"not multipart", "text/plain", "x\r\n", "1=x\r\n"},
		{"no boundary", "multipart/mixed", "--b\r\nx\r\n--b--\r\n", "1=--b\r\nx\r\n--b--\r\n"},
		{"no close delimiter", "multipart/mixed; boundary=b", "--b\r\nx\r\n", "1=--b\r\nx\r\n"},
		{"no parts", "multipart/mixed; boundary=b", "--b--\r\n", "1=--b--\r\n"},
		{"padding, LF only", "multipart/mixed; boundary=b", "--b \t\n\nx\n--b-- \n", "1=\nx"},
		{"CR is not padding", "multipart/mixed; boundary=b", "--b\r\r\n--b\r\n\r\nx\r\n--b--", "1=\r\nx"},
		{"first Content-Type", "multipart/mixed; boundary=b",
			"--b\r\nContent-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b--",
			"1=Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--"},
		{"nested unclosed is a leaf", "multipart/mixed; boundary=b",
			"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--",
			"1=Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx|2=\r\ny"},
		{"a line longer than the buffer", "multipart/mixed; boundary=b", long + "\r\n\r\nx\r\n--b--", "1=\r\nx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secs, err := CutSections(strings.NewReader(tc.body), int64(len(tc.body)), tc.ctype)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range secs {
				got = append(got, s.Index()+"="+tc.body[s.Start:s.End])
				if s.Delim >= 0 && !strings.HasPrefix(strings.TrimLeft(tc.body[s.Delim:s.Start], "\r\n"), "--") {
					t.Errorf("%s: delimiter %q", s.Index(), tc.body[s.Delim:s.Start])
				}
			}
			if g := strings.Join(got, "|"); g != tc.want {
				t.Errorf("got  %q\nwant %q", g, tc.want)
			}
		})
	}
}

// TestCutSectionsDepth: parts MaxSectionDepth levels down are cut; a
// multipart at that depth is one leaf.
func TestCutSectionsDepth(t *testing.T) {
	var b strings.Builder
	n := MaxSectionDepth + 2
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i+1)
	}
	b.WriteString("--b" + fmt.Sprint(n) + "\r\n\r\nleaf\r\n")
	for i := n; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	body := b.String()
	secs, err := CutSections(strings.NewReader(body), int64(len(body)), "multipart/mixed; boundary=b0")
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) != 1 || len(secs[0].Path) != MaxSectionDepth {
		t.Fatalf("got %d sections, first %v", len(secs), secs[0].Index())
	}
	if _, err := ParseIndex(PartSECTIONS, secs[0].Index()); err != nil {
		t.Fatal(err)
	}
}
