package callout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// fake is a scripted service.
type fake struct {
	needs Needs
	addr  func(Address) Decision
	msg   func(*Message) (Decision, error)
	seen  *[]string
	name  string
}

func (f fake) Needs() Needs { return f.needs }

func (f fake) AdaptRcpt(_ context.Context, _ *Tx, a Address) (Decision, error) {
	*f.seen = append(*f.seen, f.name+":"+a.Addr)
	return f.addr(a), nil
}

func (f fake) AdaptMessage(_ context.Context, _ *Tx, m *Message) (Decision, error) {
	b, _ := m.Bytes(0, m.Size())
	*f.seen = append(*f.seen, f.name+":"+string(b))
	return f.msg(m)
}

func TestChainOrder(t *testing.T) {
	var seen []string
	rewrite := func(to string) func(Address) Decision {
		return func(a Address) Decision { return ReplaceAddress(a.WithAddr(to)).WithHeader("X-"+to, "1") }
	}
	appendText := func(s string) func(*Message) (Decision, error) {
		return func(m *Message) (Decision, error) {
			n, err := m.Splice(Edit{Offset: m.Size(), End: m.Size(), Data: []byte(s)})
			return ReplaceMessage(n).WithHeader("X-"+s, "1"), err
		}
	}
	c := &Chain{Links: []Link{
		{"a", fake{name: "a", seen: &seen, addr: rewrite("b"), msg: appendText("A")}},
		{"b", fake{name: "b", seen: &seen, addr: func(Address) Decision { return Keep() }, msg: appendText("B")}},
		{"c", fake{name: "c", seen: &seen, addr: rewrite("c"), msg: func(*Message) (Decision, error) {
			return Keep().WithAdvice(ocpsmtp.AdviceQuarantine), nil
		}}},
	}}
	d, err := c.AdaptRcpt(context.Background(), &Tx{}, Address{Addr: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != ActionReplace || d.Address.Addr != "c" || len(d.Headers) != 2 {
		t.Errorf("address decision %+v", d)
	}
	orig := NewMessage([]byte("m"))
	d, err = c.AdaptMessage(context.Background(), &Tx{}, orig)
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != ActionReplace || string(all(t, d.Message)) != "mAB" || d.Advice != "Quarantine" || len(d.Headers) != 2 {
		t.Errorf("message decision %+v", d)
	}
	want := "a:x b:b c:b a:m b:mA c:mAB"
	if got := strings.Join(seen, " "); got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
	if string(all(t, orig)) != "m" {
		t.Error("original message changed")
	}
}

func TestChainStops(t *testing.T) {
	var seen []string
	boom := errors.New("boom")
	refuse := fake{name: "r", seen: &seen, addr: func(Address) Decision { return Refuse(550, "5.1.1 no") },
		msg: func(*Message) (Decision, error) { return Refuse(554, "5.7.1 no"), nil }}
	fail := fake{name: "f", seen: &seen, msg: func(*Message) (Decision, error) { return Decision{}, boom }}
	never := fake{name: "n", seen: &seen, addr: func(Address) Decision { return Keep() },
		msg: func(*Message) (Decision, error) { return Keep(), nil }}
	c := &Chain{Links: []Link{{"r", refuse}, {"n", never}}}
	if d, _ := c.AdaptRcpt(context.Background(), &Tx{}, Address{Addr: "x"}); d.Action != ActionRefuse || d.Reply.Code != 550 {
		t.Errorf("refusal: %+v", d)
	}
	if d, _ := c.AdaptMessage(context.Background(), &Tx{}, NewMessage(nil)); d.Action != ActionRefuse || d.Reply.Code != 554 {
		t.Errorf("refusal: %+v", d)
	}
	c = &Chain{Links: []Link{{"f", fail}, {"n", never}}}
	_, err := c.AdaptMessage(context.Background(), &Tx{}, NewMessage(nil))
	var se *ServiceError
	if !errors.Is(err, boom) || !errors.As(err, &se) || se.Service != "f" {
		t.Errorf("error %v", err)
	}
	if got := strings.Join(seen, " "); got != "r:x r: f:" {
		t.Errorf("calls %q", got)
	}
	// A decision that cannot be encoded is the service's error.
	bad := fake{name: "b", seen: &seen, msg: func(*Message) (Decision, error) { return Refuse(250, "ok"), nil }}
	c = &Chain{Links: []Link{{"b", bad}}}
	if _, err := c.AdaptMessage(context.Background(), &Tx{}, NewMessage(nil)); !errors.As(err, &se) || !errors.Is(err, ErrBadReply) {
		t.Errorf("bad reply: %v", err)
	}
	opes := fake{name: "o", seen: &seen, msg: func(*Message) (Decision, error) { return Keep().WithHeader("OPES-Via", "x"), nil }}
	c = &Chain{Links: []Link{{"o", opes}}}
	if _, err := c.AdaptMessage(context.Background(), &Tx{}, NewMessage(nil)); !errors.Is(err, ErrBadField) {
		t.Errorf("OPES header: %v", err)
	}
}

func TestChainNeeds(t *testing.T) {
	c := &Chain{Links: []Link{
		{"a", fake{needs: Needs{Read: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartALLHEADERS, ocpsmtp.PartRCPT}}}},
		{"b", fake{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartSECTIONS, ocpsmtp.PartRCPT}}}},
	}}
	n := c.Needs()
	// Data parts stay what the services need when they do not exclude
	// each other (issue 13, defect 7): no widening to RAWDATA.
	if got := fmt.Sprint(n.Adapt); got != "[RCPT SECTIONS]" {
		t.Errorf("adapt %v", got)
	}
	if got := fmt.Sprint(n.Read); got != "[IP ALLHEADERS]" {
		t.Errorf("read %v", got)
	}
	// ALLHEADERS and SINGLEHEADERS exclude each other: RAWDATA, adaptive
	// since one of them was.
	c = &Chain{Links: []Link{
		{"a", fake{needs: Needs{Read: []ocpsmtp.Part{ocpsmtp.PartALLHEADERS}}}},
		{"b", fake{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS}, HeaderList: []string{"Subject"}}}},
	}}
	n = c.Needs()
	if got := fmt.Sprint(n.Adapt, n.Read, n.HeaderList); got != "[RAWDATA] [] []" {
		t.Errorf("widened: %v", got)
	}
	// SINGLEHEADERS with the services' header lists united.
	c = &Chain{Links: []Link{
		{"a", fake{needs: Needs{Read: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS}, HeaderList: []string{"From"}}}},
		{"b", fake{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS}, HeaderList: []string{"Subject"}}}},
	}}
	n = c.Needs()
	if got := fmt.Sprint(n.Adapt, n.Read, n.HeaderList); got != "[SINGLEHEADERS] [] [From Subject]" {
		t.Errorf("header list: %v", got)
	}
}

func TestSetServicesAppliesToNewGroups(t *testing.T) {
	old := fake{}
	srv := &Server{Services: map[string]Service{"urn:old": old}}
	if _, err := srv.chain([]ocp.Service{{URI: "urn:old"}}); err != nil {
		t.Fatal(err)
	}
	srv.SetServices(map[string]Service{"urn:new": old})
	if _, err := srv.chain([]ocp.Service{{URI: "urn:old"}}); err == nil {
		t.Fatal("a removed service still builds a chain after the reload")
	}
	if c, err := srv.chain([]ocp.Service{{URI: "urn:new"}}); err != nil || len(c.Links) != 1 {
		t.Fatalf("new service: %v %v", c, err)
	}
}

func TestMessageID(t *testing.T) {
	for _, tt := range []struct{ msg, want string }{
		{"From: a\r\nMessage-ID: <x@y>\r\n\r\nbody", "<x@y>"},
		{"message-id:\r\n <folded@y>\r\nSubject: s\r\n\r\n", "<folded@y>"},
		{"Subject: s\r\n\r\nMessage-ID: <in-body@y>\r\n", ""},
		{"Received: " + strings.Repeat("x", 5000) + "\r\nMessage-ID: <after-long@y>\r\n\r\n", "<after-long@y>"},
		{"", ""},
	} {
		sp := NewSpool(SpoolOptions{})
		sp.Write([]byte(tt.msg))
		msg, err := sp.Message()
		if err != nil {
			t.Fatal(err)
		}
		if got := messageID(msg); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.msg[:min(len(tt.msg), 40)], got, tt.want)
		}
		msg.Close()
	}
}
