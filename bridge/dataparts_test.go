package bridge_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

var envelopeInformative = []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL}

// sendMIME sends one message with the given header fields and body.
func sendMIME(t *testing.T, s *ClientSession, fields [][2]string, body string) ([]ModifyAction, *Action) {
	t.Helper()
	if _, err := s.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	if act, err := s.Rcpt("b@example.com", ""); err != nil || act.Type != ActionContinue {
		t.Fatalf("rcpt %v %v", act, err)
	}
	var h textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		h.Add(fields[i][0], fields[i][1])
	}
	if _, err := s.Header(h); err != nil {
		t.Fatal(err)
	}
	var mods []ModifyAction
	var act *Action
	var err error
	if body == "" {
		// An empty body: one chunk of no octets, as an MTA sends it.
		if _, err := s.BodyChunk(nil); err != nil {
			t.Fatal(err)
		}
		mods, act, err = s.End()
	} else {
		mods, act, err = s.BodyReadFrom(strings.NewReader(body))
	}
	if err != nil {
		t.Fatal(err)
	}
	return mods, act
}

func bodyOf(mods []ModifyAction) (string, bool) {
	var b []byte
	found := false
	for _, m := range mods {
		if m.Type == ActionReplaceBody {
			b = append(b, m.Body...)
			found = true
		}
	}
	return string(b), found
}

func TestAllHeadersAndBody(t *testing.T) {
	co := startCallout(t, scriptServer(ocptest.Answers{Data: func(part ocpsmtp.Part, index string, orig []byte) string {
		switch part {
		case ocpsmtp.PartALLHEADERS:
			return "replace:" + strings.Replace(string(orig), "Subject:", "Subject: [ext]", 1)
		case ocpsmtp.PartBODY:
			return "replace:" + string(orig) + "footer\r\n"
		}
		return ""
	}}))
	p := testPolicy(co.Addr, []ocpsmtp.Part{ocpsmtp.PartALLHEADERS, ocpsmtp.PartBODY}, envelopeInformative)
	m := startMilter(t, p)
	s := m.session(t)
	mods, act := sendMIME(t, s, [][2]string{{"From", "a@example.org"}, {"Subject", "hi"}}, "text\r\n")
	wantFinal(t, act, ActionAccept)
	ch := findMods(mods, ActionChangeHeader, "Subject")
	if len(ch) != 1 || !strings.HasPrefix(ch[0].HeaderValue, " [ext]") {
		t.Fatalf("change = %+v (all %+v)", ch, mods)
	}
	if b, _ := bodyOf(mods); b != "text\r\nfooter\r\n" {
		t.Fatalf("body = %q", b)
	}
}

func TestSingleHeaders(t *testing.T) {
	co := startCallout(t, scriptServer(ocptest.Answers{Data: func(part ocpsmtp.Part, index string, orig []byte) string {
		switch {
		case strings.HasPrefix(string(orig), "Subject:"):
			return "replace:Subject: [tagged] hi\r\n"
		case strings.HasPrefix(string(orig), "X-Drop:"):
			return "delete"
		}
		return ""
	}}))
	prof := []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS}
	p := testPolicy(co.Addr, prof, envelopeInformative)
	p.Routes[0].HeaderList = []string{"Subject", "X-Drop"}
	m := startMilter(t, p)
	s := m.session(t)
	mods, act := sendMIME(t, s, [][2]string{{"X-Drop", "1"}, {"From", "a@example.org"}, {"X-Drop", "2"}, {"Subject", "hi"}}, "text\r\n")
	wantFinal(t, act, ActionAccept)
	sub := findMods(mods, ActionChangeHeader, "Subject")
	drop := findMods(mods, ActionChangeHeader, "X-Drop")
	if len(sub) != 1 || sub[0].HeaderIndex != 1 || sub[0].HeaderValue != " [tagged] hi" {
		t.Fatalf("subject = %+v", sub)
	}
	if len(drop) != 2 || drop[0].HeaderValue != "" || drop[0].HeaderIndex != 2 || drop[1].HeaderIndex != 1 {
		t.Fatalf("drops (reverse order) = %+v", drop)
	}
	if _, replaced := bodyOf(mods); replaced {
		t.Fatal("body replaced")
	}
	// Only the listed fields were sent.
	n := 0
	for _, msg := range co.Messages() {
		if d, err := ocpsmtp.ParseData(msg); err == nil && d.Part == ocpsmtp.PartSINGLEHEADERS {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("sent %d SINGLEHEADERS instances, want 3", n)
	}
}

const mixedBody = "This is a multi-part message.\r\n" +
	"--XX\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n" +
	"--XX\r\n" +
	"Content-Type: application/octet-stream; name=evil.exe\r\n" +
	"Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n" +
	"--XX--\r\nepilogue\r\n"

func TestSectionsSpliceKeepsUntouchedBytes(t *testing.T) {
	co := startCallout(t, scriptServer(ocptest.Answers{Data: func(part ocpsmtp.Part, index string, orig []byte) string {
		if part == ocpsmtp.PartSECTIONS && strings.Contains(string(orig), "evil.exe") {
			return "delete"
		}
		return ""
	}}))
	p := testPolicy(co.Addr, []ocpsmtp.Part{ocpsmtp.PartSECTIONS}, envelopeInformative)
	m := startMilter(t, p)
	s := m.session(t)
	mods, act := sendMIME(t, s, [][2]string{{"Content-Type", "multipart/mixed; boundary=XX"}, {"Subject", "hi"}}, mixedBody)
	wantFinal(t, act, ActionAccept)
	b, ok := bodyOf(mods)
	want := "This is a multi-part message.\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n--XX--\r\nepilogue\r\n"
	if !ok || b != want {
		t.Fatalf("body\n%q\nwant\n%q", b, want)
	}
	var idx []string
	for _, msg := range co.Messages() {
		if d, err := ocpsmtp.ParseData(msg); err == nil && d.Part == ocpsmtp.PartSECTIONS {
			idx = append(idx, d.Index)
		}
	}
	if strings.Join(idx, ",") != "1,2" {
		t.Fatalf("section indexes = %v", idx)
	}
}

func TestSectionsUnchangedNoBodyReplacement(t *testing.T) {
	co := startCallout(t, scriptServer(ocptest.Answers{}))
	p := testPolicy(co.Addr, []ocpsmtp.Part{ocpsmtp.PartSECTIONS}, envelopeInformative)
	m := startMilter(t, p)
	s := m.session(t)
	mods, act := sendMIME(t, s, [][2]string{{"Content-Type", "multipart/mixed; boundary=XX"}}, mixedBody)
	wantFinal(t, act, ActionAccept)
	if _, replaced := bodyOf(mods); replaced {
		t.Fatal("body replaced although unchanged")
	}
}

func TestEmptyBodyIsSentAsEmptyBODY(t *testing.T) {
	co := startCallout(t, scriptServer(ocptest.Answers{}))
	p := testPolicy(co.Addr, []ocpsmtp.Part{ocpsmtp.PartBODY}, envelopeInformative)
	m := startMilter(t, p)
	s := m.session(t)
	_, act := sendMIME(t, s, [][2]string{{"Subject", "empty"}}, "")
	wantFinal(t, act, ActionAccept)
}
