package bridge

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

const nested = "preamble\r\n" +
	"--outer\r\n" +
	"Content-Type: text/plain\r\n\r\nfirst\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=inner\r\n\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain\r\n\r\nplain\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html\r\n\r\n<p>html</p>\r\n" +
	"--inner--\r\n" +
	"\r\n--outer\r\n" +
	"Content-Type: application/octet-stream; name=x.exe\r\n\r\nMZ\r\n" +
	"--outer--\r\nepilogue\r\n"

func TestSplitSections(t *testing.T) {
	body := strings.NewReader(nested)
	secs, _ := splitSections(body, int64(len(nested)), ` multipart/mixed; boundary="outer"`)
	var got []string
	for _, s := range secs {
		got = append(got, s.index()+"="+nested[s.start:s.end])
	}
	want := []string{
		"1=Content-Type: text/plain\r\n\r\nfirst",
		"2.1=Content-Type: text/plain\r\n\r\nplain",
		"2.2=Content-Type: text/html\r\n\r\n<p>html</p>",
		"3=Content-Type: application/octet-stream; name=x.exe\r\n\r\nMZ",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sections\n got %q\nwant %q", got, want)
	}
}

func TestSplitSectionsFallsBackToOneSection(t *testing.T) {
	for _, tc := range []struct{ body, ct string }{
		{"just text\r\n", "text/plain"},
		{"--b\r\nx\r\n", "multipart/mixed; boundary=b"}, // no closing delimiter
		{"x\r\n", "multipart/mixed"},                    // no boundary
	} {
		secs, _ := splitSections(strings.NewReader(tc.body), int64(len(tc.body)), tc.ct)
		if len(secs) != 1 || secs[0].index() != "1" || secs[0].start != 0 || secs[0].end != int64(len(tc.body)) {
			t.Errorf("%q: %+v", tc.body, secs)
		}
	}
}

func TestSpliceSections(t *testing.T) {
	body := strings.NewReader(nested)
	size := int64(len(nested))
	secs, _ := splitSections(body, size, "multipart/mixed; boundary=outer")
	out, _ := io.ReadAll(spliceSections(body, size, []sectionEdit{
		{sec: secs[1], content: strings.NewReader("Content-Type: text/plain\r\n\r\nplain\r\n-- \r\nfooter")},
		{sec: secs[3]},
	}))
	want := strings.Replace(nested, "plain\r\n--inner\r\nContent-Type: text/html", "plain\r\n-- \r\nfooter\r\n--inner\r\nContent-Type: text/html", 1)
	want = strings.Replace(want, "\r\n--outer\r\nContent-Type: application/octet-stream; name=x.exe\r\n\r\nMZ", "", 1)
	if !bytes.Equal(out, []byte(want)) {
		t.Fatalf("spliced\n%q\nwant\n%q", out, want)
	}
}
