package ocp

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// roundTrip decodes wire, checks it re-encodes to exactly the same bytes and
// returns the message.
func roundTrip(t *testing.T, wire string) *Message {
	t.Helper()
	d := NewDecoder(strings.NewReader(wire), Limits{})
	m, err := d.Decode()
	if err != nil {
		t.Fatalf("Decode(%q): %v", wire, err)
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatalf("Decode(%q): trailing data: %v", wire, err)
	}
	if got := string(AppendMessage(nil, m)); got != wire {
		t.Fatalf("re-encoded\n got %q\nwant %q", got, wire)
	}
	return m
}

func TestCodecWireShapes(t *testing.T) {
	tests := []struct {
		wire string
		want *Message
	}{
		{"PQ;\r\n", &Message{Name: "PQ"}},
		{"TS 1 2;\r\n", &Message{Name: "TS", Anon: []Value{Atom("1"), Atom("2")}}},
		{"DWM 1\r\nSize-request: 16384\r\n;\r\n", &Message{Name: "DWM", Anon: []Value{Atom("1")},
			Named: []Param{NewParam("Size-request", Atom("16384"))}}},
		{"DUM 1 13\r\n5:hello\r\n;\r\n", &Message{Name: "DUM", Anon: []Value{Atom("1"), Atom("13")},
			Payload: []byte("hello"), HasPayload: true}},
		{"DUM 1 13\r\nModp: 75\r\n\r\n5:hello\r\n;\r\n", &Message{Name: "DUM", Anon: []Value{Atom("1"), Atom("13")},
			Named: []Param{NewParam("Modp", Atom("75"))}, Payload: []byte("hello"), HasPayload: true}},
		{"DUM 1 0\r\n0:\r\n;\r\n", &Message{Name: "DUM", Anon: []Value{Atom("1"), Atom("0")},
			Payload: []byte{}, HasPayload: true}},
		{"NO ({\"54:http://www.iana.org/assignments/opes/ocp/http/response\"\r\nAux-Parts: (request-header,request-body)\r\n})\r\nSG: 5\r\n;\r\n",
			&Message{Name: "NO", Anon: []Value{List{Struct{
				Anon:  []Value{Atom("http://www.iana.org/assignments/opes/ocp/http/response")},
				Named: []Param{NewParam("Aux-Parts", List{Atom("request-header"), Atom("request-body")})},
			}}}, Named: []Param{NewParam("SG", Atom("5"))}}},
		{"NO ();\r\n", &Message{Name: "NO", Anon: []Value{List{}}}},
		{"TE 1 {400 \"8:too busy\"};\r\n", &Message{Name: "TE", Anon: []Value{Atom("1"),
			Struct{Anon: []Value{Atom("400"), Atom("too busy")}}}}},
		{"DUM 1 19\r\nKept: 19 18\r\nAM-Part: RCPT\r\nAllow: (SMTP-Error)\r\n\r\n18:<paul@example.com>\r\n;\r\n",
			&Message{Name: "DUM", Anon: []Value{Atom("1"), Atom("19")}, Named: []Param{
				{Name: "Kept", Values: []Value{Atom("19"), Atom("18")}},
				NewParam("AM-Part", Atom("RCPT")),
				NewParam("Allow", List{Atom("SMTP-Error")}),
			}, Payload: []byte("<paul@example.com>"), HasPayload: true}},
		{"x-doit \"0:\" {};\r\n", &Message{Name: "x-doit", Anon: []Value{Atom{}, Struct{}}}},
		{"DUM 1 0\r\n4:;\r\n;\r\n;\r\n", &Message{Name: "DUM", Anon: []Value{Atom("1"), Atom("0")},
			Payload: []byte(";\r\n;"), HasPayload: true}},
	}
	for _, tt := range tests {
		t.Run(tt.wire, func(t *testing.T) {
			m := roundTrip(t, tt.wire)
			if !reflect.DeepEqual(m, tt.want) {
				t.Errorf("decoded %#v\nwant %#v", m, tt.want)
			}
			if got := string(AppendMessage(nil, tt.want)); got != tt.wire {
				t.Errorf("encoded %q, want %q", got, tt.wire)
			}
		})
	}
}

func TestDecodeQuotedEqualsBare(t *testing.T) {
	d := NewDecoder(strings.NewReader("TS \"1:7\" 2;\r\n"), Limits{})
	m, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Uint(m.Anon[0]); err != nil || n != 7 {
		t.Fatalf("Uint = %d, %v", n, err)
	}
	if got := string(AppendMessage(nil, m)); got != "TS 7 2;\r\n" {
		t.Fatalf("canonical form %q", got)
	}
}

func TestDecodeSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, wire string
		limit      bool
	}{
		{"leading zero size", "DUM 1 0\r\nAM-Part: RCPT\r\n\r\n05:hello\r\n;\r\n", false},
		{"size too large", "x-doit \"2147483648:abc\";\r\n", true},
		{"quoted not closed", "x-doit \"5:xyz\";\r\n", false},
		{"space before semicolon", "PQ ;\r\n", false},
		{"double space", "TS  1 2;\r\n", false},
		{"spaces in structure", "TE 1 { 200 OK };\r\n", false},
		{"lower-case start", "1PQ;\r\n", false},
		{"bare star", "NR (*);\r\n", false},
		{"missing LF", "PQ;\rX", false},
		{"named without space", "DWM 1\r\nSize-request:1\r\n;\r\n", false},
		{"payload without empty line", "DUM 1 0\r\nModp: 1\r\n5:hello\r\n;\r\n", false},
		{"huge payload", "DUM 1 0\r\n2147483647:", true},
		{"deep nesting", "NO " + strings.Repeat("(", 100000) + ";\r\n", true},
		{"header too long", "NO " + strings.Repeat("a", 70000) + ";\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDecoder(strings.NewReader(tt.wire), Limits{}).Decode()
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *SyntaxError", err)
			}
			if got := errors.Is(err, ErrLimit); got != tt.limit {
				t.Errorf("errors.Is(err, ErrLimit) = %v, want %v (%v)", got, tt.limit, err)
			}
		})
	}
}

func TestDecodeTruncated(t *testing.T) {
	_, err := NewDecoder(strings.NewReader("PQ\r\n"), Limits{}).Decode()
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestDecodeBareStarOption(t *testing.T) {
	d := NewDecoder(strings.NewReader("NR (From,*);\r\n"), Limits{})
	d.AllowBareStar = true
	m, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	want := List{Atom("From"), Atom("*")}
	if !reflect.DeepEqual(m.Anon[0], want) {
		t.Fatalf("got %#v", m.Anon[0])
	}
	if got := string(AppendMessage(nil, m)); got != "NR (From,\"1:*\");\r\n" {
		t.Fatalf("canonical %q", got)
	}
}

func TestEncoderLargePayload(t *testing.T) {
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	payload := bytes.Repeat([]byte("x"), 70000)
	m := &Message{Name: MsgDUM, Anon: []Value{Num(3), Num(0)},
		Named: []Param{NewParam("AM-Part", Atom("RAWDATA"))}, Payload: payload, HasPayload: true}
	if err := e.Encode(m); err != nil {
		t.Fatal(err)
	}
	if err := e.Encode(&Message{Name: MsgPQ}); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	want := string(AppendMessage(AppendMessage(nil, m), &Message{Name: MsgPQ}))
	if buf.String() != want {
		t.Fatalf("Encoder output differs from AppendMessage")
	}
}
