package ocpsmtp

import (
	"errors"
	"reflect"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
)

func param(name string, vs ...ocp.Value) ocp.Param { return ocp.Param{Name: name, Values: vs} }

func TestDataParamsRoundTrip(t *testing.T) {
	tests := []Data{
		{Part: PartRCPT, Allow: []string{AllowSMTPError}},
		{Part: PartMAIL, Allow: []string{AllowSMTPError, AllowAdvice},
			Opts: []Opt{{OptTLSVersion, "TLSv1.3"}, {OptAuthAuthen, "alice"}}},
		{Part: PartRAWDATA, AddHeader: "X-Spam-Flag: YES", Advice: AdviceQuarantine},
		{Part: PartRAWDATA, AddHeader: "Authentication-Results: mx.example; none", AddHeaderTop: true},
		{Part: PartSINGLEHEADERS, Index: "7"},
		{Part: PartSECTIONS, Index: "2.1"},
		{Part: PartRCPT, SMTPError: "550 5.1.1 No such user here"},
		{Advice: AdviceAccept},
	}
	for _, d := range tests {
		name := "DUM"
		if d.Part == "" {
			name = "DUY"
		}
		m := &ocp.Message{Name: name, Named: d.Params(), HasPayload: name == "DUM", Payload: []byte{}}
		got, err := ParseData(m)
		if err != nil {
			t.Errorf("ParseData(%+v): %v", d, err)
			continue
		}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("round trip: got %+v, want %+v", got, d)
		}
	}
}

func TestDataParamsOrder(t *testing.T) {
	d := Data{Part: PartRAWDATA, Index: "", Allow: []string{AllowSMTPError, AllowAddHeader},
		AddHeader: "X-A: b", Advice: AdviceDiscard, Opts: []Opt{{OptQueueID, "4Xyz"}}}
	var names []string
	for _, p := range d.Params() {
		names = append(names, p.Name)
	}
	want := []string{ParamAMPart, ParamAllow, ParamAddHeader, ParamAdvice, ParamAMOPT}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Params names = %v, want %v", names, want)
	}
	if len((Data{}).Params()) != 0 {
		t.Errorf("zero Data has parameters")
	}
}

func TestParseDataErrors(t *testing.T) {
	amPart := param(ParamAMPart, ocp.Atom("RCPT"))
	tests := []struct {
		name    string
		msg     ocp.Message
		param   string
		wrapped bool // the ParamError wraps a *SyntaxError
	}{
		{"DUM without AM-Part", ocp.Message{Name: "DUM", HasPayload: true}, ParamAMPart, false},
		{"duplicate AM-Part", ocp.Message{Name: "DUM", Named: []ocp.Param{amPart, amPart}}, ParamAMPart, false},
		{"AM-Part two values", ocp.Message{Name: "DUM", Named: []ocp.Param{
			param(ParamAMPart, ocp.Atom("RCPT"), ocp.Atom("MAIL"))}}, ParamAMPart, false},
		{"AM-Part list", ocp.Message{Name: "DUM", Named: []ocp.Param{
			param(ParamAMPart, ocp.List{ocp.Atom("RCPT")})}}, ParamAMPart, false},
		{"AM-Part bad token", ocp.Message{Name: "DUM", Named: []ocp.Param{
			param(ParamAMPart, ocp.Atom("R C"))}}, ParamAMPart, false},
		{"Allow not a list", ocp.Message{Name: "DUM", Named: []ocp.Param{amPart,
			param(ParamAllow, ocp.Atom("SMTP-Error"))}}, ParamAllow, false},
		{"Allow nested", ocp.Message{Name: "DUM", Named: []ocp.Param{amPart,
			param(ParamAllow, ocp.List{ocp.List{}})}}, ParamAllow, false},
		{"bad SMTP-Error", ocp.Message{Name: "DUM", Named: []ocp.Param{amPart,
			param(ParamSMTPError, ocp.Atom("250 ok"))}}, ParamSMTPError, true},
		{"SMTP-Error with payload", ocp.Message{Name: "DUM", HasPayload: true, Payload: []byte("x"),
			Named: []ocp.Param{amPart, param(ParamSMTPError, ocp.Atom("550 no"))}}, ParamSMTPError, false},
		{"SMTP-Error on DUY", ocp.Message{Name: "DUY", Named: []ocp.Param{
			param(ParamSMTPError, ocp.Atom("550 no"))}}, ParamSMTPError, false},
		{"bad Add-Header", ocp.Message{Name: "DUY", Named: []ocp.Param{
			param(ParamAddHeader, ocp.Atom("X-A: a\r\nB: b"))}}, ParamAddHeader, true},
		{"Add-Header OPES-System", ocp.Message{Name: "DUY", Named: []ocp.Param{
			param(ParamAddHeader, ocp.Atom("OPES-System: http://evil.example/"))}}, ParamAddHeader, false},
		{"Add-Header-At without Add-Header", ocp.Message{Name: "DUY", Named: []ocp.Param{
			param(ParamAddHeaderAt, ocp.Atom("top"))}}, ParamAddHeaderAt, false},
		{"Add-Header-At bottom", ocp.Message{Name: "DUY", Named: []ocp.Param{
			param(ParamAddHeader, ocp.Atom("X-A: a")), param(ParamAddHeaderAt, ocp.Atom("bottom"))}}, ParamAddHeaderAt, false},
		{"Advice bad token", ocp.Message{Name: "DUY", Named: []ocp.Param{
			param(ParamAdvice, ocp.Atom("not valid"))}}, ParamAdvice, false},
		{"AM-Index on RCPT", ocp.Message{Name: "DUM", Named: []ocp.Param{amPart,
			param(ParamAMIndex, ocp.Atom("1"))}}, ParamAMIndex, true},
		{"AM-Index dotted on SINGLEHEADERS", ocp.Message{Name: "DUM", Named: []ocp.Param{
			param(ParamAMPart, ocp.Atom("SINGLEHEADERS")), param(ParamAMIndex, ocp.Atom("1.2"))}}, ParamAMIndex, true},
		{"AM-Index empty", ocp.Message{Name: "DUM", Named: []ocp.Param{
			param(ParamAMPart, ocp.Atom("SECTIONS")), param(ParamAMIndex, ocp.Atom(""))}}, ParamAMIndex, false},
		{"AM-OPT not a list", ocp.Message{Name: "DUM", Named: []ocp.Param{amPart,
			param(ParamAMOPT, ocp.Atom("x"))}}, ParamAMOPT, false},
		{"AM-OPT one member", ocp.Message{Name: "DUM", Named: []ocp.Param{amPart,
			param(ParamAMOPT, ocp.List{ocp.Struct{Anon: []ocp.Value{ocp.Atom("queue-id")}}})}}, ParamAMOPT, false},
		{"AM-OPT bad keyword", ocp.Message{Name: "DUM", Named: []ocp.Param{amPart,
			param(ParamAMOPT, ocp.List{ocp.Struct{Anon: []ocp.Value{ocp.Atom("a b"), ocp.Atom("v")}}})}}, ParamAMOPT, false},
	}
	for _, tt := range tests {
		_, err := ParseData(&tt.msg)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Name != tt.param {
			t.Errorf("%s: err = %v, want *ParamError for %s", tt.name, err, tt.param)
			continue
		}
		var se *SyntaxError
		if errors.As(err, &se) != tt.wrapped {
			t.Errorf("%s: wraps SyntaxError = %v, want %v", tt.name, !tt.wrapped, tt.wrapped)
		}
	}
}

func TestParseDataLenient(t *testing.T) {
	m := &ocp.Message{Name: "DUM", HasPayload: true, Payload: []byte("<paul@example.com>"), Named: []ocp.Param{
		param(ParamAMPart, ocp.Atom("RCPT")),
		param(ParamKept, ocp.Atom("19"), ocp.Atom("18")),
		param("X-Unknown", ocp.List{}),
		param(ParamAllow, ocp.List{ocp.Atom("SMTP-Error"), ocp.Atom("X-Later")}),
		param(ParamAdvice, ocp.Atom("Reconsider")),
		param(ParamAMOPT, ocp.List{ocp.Struct{Anon: []ocp.Value{ocp.Atom("authtype"), ocp.Atom("cram-md5"), ocp.Atom("x")}}}),
	}}
	d, err := ParseData(m)
	if err != nil {
		t.Fatal(err)
	}
	want := Data{Part: PartRCPT, Allow: []string{"SMTP-Error", "X-Later"}, Advice: "Reconsider",
		Opts: []Opt{{"authtype", "cram-md5"}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got %+v, want %+v", d, want)
	}
	if !d.Allows(AllowSMTPError) || d.Allows(AllowAddHeader) {
		t.Errorf("Allows wrong for %v", d.Allow)
	}
	if d.Advice.Known() || !AdviceAccept.Known() || !AdviceDiscard.Known() || !AdviceQuarantine.Known() {
		t.Errorf("Advice.Known wrong")
	}
}

func TestIndex(t *testing.T) {
	tests := []struct {
		part Part
		in   string
		want []int
	}{
		{PartSINGLEHEADERS, "1", []int{1}},
		{PartSINGLEHEADERS, "42", []int{42}},
		{PartSECTIONS, "1", []int{1}},
		{PartSECTIONS, "2.1.3", []int{2, 1, 3}},
		{PartSINGLEHEADERS, "0", nil},
		{PartSINGLEHEADERS, "01", nil},
		{PartSINGLEHEADERS, "-1", nil},
		{PartSINGLEHEADERS, "2.1", nil},
		{PartSINGLEHEADERS, "1234567890", nil},
		{PartSECTIONS, "1..2", nil},
		{PartSECTIONS, "1.", nil},
		{PartSECTIONS, ".1", nil},
		{PartSECTIONS, "1.0", nil},
		{PartSECTIONS, "a", nil},
		{PartRCPT, "1", nil},
		{PartBODY, "1", nil},
	}
	for _, tt := range tests {
		got, err := ParseIndex(tt.part, tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("ParseIndex(%s, %q) = %v, want error", tt.part, tt.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseIndex(%s, %q) = %v, %v", tt.part, tt.in, got, err)
		}
		if s := FormatIndex(got...); s != tt.in {
			t.Errorf("FormatIndex(%v) = %q", got, s)
		}
	}
	deep := FormatIndex(make([]int, MaxSectionDepth+1)...)
	if _, err := ParseIndex(PartSECTIONS, deep); err == nil {
		t.Errorf("ParseIndex accepted %d levels", MaxSectionDepth+1)
	}
}
