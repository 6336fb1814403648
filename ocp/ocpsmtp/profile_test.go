package ocpsmtp

import (
	"errors"
	"reflect"
	"testing"
)

func TestCheckAnswer(t *testing.T) {
	offer := Profile{URI: ReceiverURI,
		Adaptive:    []Part{PartRCPT, PartRAWDATA, PartSINGLEHEADERS, PartBODY},
		Informative: []Part{PartIP, PartHELO, PartMAIL}}
	tests := []struct {
		name   string
		answer Profile
		part   Part // expected NegotiationError.Part, when set
		ok     bool
		excl   bool
	}{
		{"subset", Profile{URI: ReceiverURI, Adaptive: []Part{PartRAWDATA}, Informative: []Part{PartMAIL}}, "", true, false},
		{"adaptive downgraded", Profile{URI: ReceiverURI, Informative: []Part{PartRCPT, PartIP}}, "", true, false},
		{"empty", Profile{URI: ReceiverURI}, "", true, false},
		{"headers", Profile{URI: ReceiverURI, Informative: []Part{PartSINGLEHEADERS},
			HeaderList: []string{"From", "To"}}, "", true, false},
		{"T9 other URI", Profile{URI: SenderURI}, "", false, false},
		{"T44 unsupported", Profile{URI: ReceiverURI, Adaptive: []Part{PartVRFY}}, PartVRFY, false, false},
		{"T44 unknown informative", Profile{URI: ReceiverURI, Informative: []Part{"FOOBAR"}}, "FOOBAR", false, false},
		{"informative upgraded", Profile{URI: ReceiverURI, Adaptive: []Part{PartMAIL}}, PartMAIL, false, false},
		{"T45 both lists", Profile{URI: ReceiverURI, Adaptive: []Part{PartRCPT}, Informative: []Part{PartRCPT}}, PartRCPT, false, false},
		{"T46 exclusive", Profile{URI: ReceiverURI, Adaptive: []Part{PartRAWDATA, PartBODY}}, "", false, true},
		{"T46 across lists", Profile{URI: ReceiverURI, Adaptive: []Part{PartBODY}, Informative: []Part{PartRAWDATA}}, "", false, true},
		{"T47 Header-List alone", Profile{URI: ReceiverURI, Adaptive: []Part{PartRAWDATA}, HeaderList: []string{"From"}}, "", false, false},
		{"SINGLEHEADERS without list", Profile{URI: ReceiverURI, Adaptive: []Part{PartSINGLEHEADERS}}, PartSINGLEHEADERS, false, false},
	}
	for _, tt := range tests {
		err := CheckAnswer(offer, tt.answer)
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var ne *NegotiationError
		if !errors.As(err, &ne) {
			t.Errorf("%s: err = %v, want *NegotiationError", tt.name, err)
			continue
		}
		if tt.part != "" && ne.Part != tt.part {
			t.Errorf("%s: blames %q, want %q", tt.name, ne.Part, tt.part)
		}
		var ee *ExclusiveError
		if errors.As(err, &ee) != tt.excl {
			t.Errorf("%s: ExclusiveError wrapped = %v", tt.name, !tt.excl)
		}
	}
}

func TestHasAndWantsHeader(t *testing.T) {
	p := Profile{Adaptive: []Part{PartRCPT}, Informative: []Part{PartMAIL, PartSINGLEHEADERS},
		HeaderList: []string{"From", "reply-to"}}
	for _, tt := range []struct {
		part Part
		a, i bool
	}{{PartRCPT, true, false}, {PartMAIL, false, true}, {PartRAWDATA, false, false}} {
		if a, i := p.Has(tt.part); a != tt.a || i != tt.i {
			t.Errorf("Has(%s) = %v, %v", tt.part, a, i)
		}
	}
	for name, want := range map[string]bool{"from": true, "Reply-To": true, "To": false} {
		if p.WantsHeader(name) != want {
			t.Errorf("WantsHeader(%q) != %v", name, want)
		}
	}
	p.HeaderList = []string{AllHeaders}
	if !p.WantsHeader("X-Anything") {
		t.Errorf("* does not match")
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name string
		in   []Profile
		want Profile
	}{
		{"adaptive wins", []Profile{
			{URI: ReceiverURI, Adaptive: []Part{PartRCPT}, Informative: []Part{PartMAIL}},
			{URI: ReceiverURI, Adaptive: []Part{PartMAIL}, Informative: []Part{PartRCPT, PartIP}},
		}, Profile{URI: ReceiverURI, Adaptive: []Part{PartRCPT, PartMAIL}, Informative: []Part{PartIP}}},
		{"widen to adaptive RAWDATA", []Profile{
			{URI: ReceiverURI, Adaptive: []Part{PartBODY}},
			{URI: ReceiverURI, Informative: []Part{PartSECTIONS, PartALLHEADERS}},
		}, Profile{URI: ReceiverURI, Adaptive: []Part{PartRAWDATA}}},
		{"widen to informative RAWDATA", []Profile{
			{URI: ReceiverURI, Adaptive: []Part{PartMAIL}, Informative: []Part{PartSINGLEHEADERS}, HeaderList: []string{"From"}},
			{URI: ReceiverURI, Informative: []Part{PartALLHEADERS}},
		}, Profile{URI: ReceiverURI, Adaptive: []Part{PartMAIL}, Informative: []Part{PartRAWDATA}}},
		{"header lists", []Profile{
			{URI: SenderURI, Informative: []Part{PartSINGLEHEADERS}, HeaderList: []string{"From"}, Extensions: []string{"SIZE"}},
			{URI: SenderURI, Adaptive: []Part{PartSINGLEHEADERS}, HeaderList: []string{"from", "To"}, Extensions: []string{"AUTH", "size"}},
		}, Profile{URI: SenderURI, Adaptive: []Part{PartSINGLEHEADERS}, HeaderList: []string{"From", "To"},
			Extensions: []string{"SIZE", "AUTH"}}},
		{"star absorbs", []Profile{
			{URI: SenderURI, Informative: []Part{PartSINGLEHEADERS}, HeaderList: []string{"From"}},
			{URI: SenderURI, Informative: []Part{PartSINGLEHEADERS}, HeaderList: []string{AllHeaders}},
		}, Profile{URI: SenderURI, Informative: []Part{PartSINGLEHEADERS}, HeaderList: []string{AllHeaders}}},
	}
	for _, tt := range tests {
		got := Merge(tt.in...)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Merge = %+v, want %+v", tt.name, got, tt.want)
		}
		if err := CheckExclusive(got.Parts()); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
