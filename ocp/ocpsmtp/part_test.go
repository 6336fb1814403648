package ocpsmtp

import (
	"errors"
	"slices"
	"testing"
)

func TestParsePart(t *testing.T) {
	tests := []struct {
		in         string
		known      bool
		splittable bool
		rank       int
	}{
		{"IP", true, false, 1},
		{"EHLO", true, false, 2},
		{"HELO", true, false, 2},
		{"MAIL", true, false, 3},
		{"RCPT", true, false, 4},
		{"VRFY", true, false, 0},
		{"EXPN", true, false, 0},
		{"RAWDATA", true, true, 5},
		{"ALLHEADERS", true, true, 5},
		{"SINGLEHEADERS", true, false, 5},
		{"BODY", true, true, 6},
		{"SECTIONS", true, true, 6},
		{"DATA", false, false, 0},
		{"rcpt", false, false, 0},
		{"", false, false, 0},
		{"VIPNAME", false, false, 0},
	}
	for _, tt := range tests {
		p, ok := ParsePart(tt.in)
		if ok != tt.known || p.Known() != tt.known || string(p) != tt.in {
			t.Errorf("ParsePart(%q) = %q, %v; want known %v", tt.in, p, ok, tt.known)
		}
		if p.Splittable() != tt.splittable {
			t.Errorf("%q.Splittable() = %v", tt.in, p.Splittable())
		}
		if p.Rank() != tt.rank {
			t.Errorf("%q.Rank() = %d, want %d", tt.in, p.Rank(), tt.rank)
		}
	}
}

func TestCheckExclusive(t *testing.T) {
	tests := []struct {
		parts []Part
		a, b  Part // "" = no error
	}{
		{nil, "", ""},
		{[]Part{PartMAIL, PartRCPT, PartRAWDATA}, "", ""},
		{[]Part{PartALLHEADERS, PartBODY}, "", ""},
		{[]Part{PartSINGLEHEADERS, PartSECTIONS}, "", ""},
		{[]Part{PartALLHEADERS, PartSECTIONS}, "", ""},
		{[]Part{PartRAWDATA, PartBODY}, PartRAWDATA, PartBODY},
		{[]Part{PartBODY, PartRAWDATA}, PartRAWDATA, PartBODY},
		{[]Part{PartRAWDATA, PartALLHEADERS}, PartRAWDATA, PartALLHEADERS},
		{[]Part{PartRAWDATA, PartSINGLEHEADERS}, PartRAWDATA, PartSINGLEHEADERS},
		{[]Part{PartSECTIONS, PartRAWDATA}, PartRAWDATA, PartSECTIONS},
		{[]Part{PartALLHEADERS, PartSINGLEHEADERS}, PartALLHEADERS, PartSINGLEHEADERS},
		{[]Part{PartMAIL, PartSECTIONS, PartBODY}, PartBODY, PartSECTIONS},
	}
	for _, tt := range tests {
		err := CheckExclusive(tt.parts)
		if tt.a == "" {
			if err != nil {
				t.Errorf("CheckExclusive(%v) = %v", tt.parts, err)
			}
			continue
		}
		var ee *ExclusiveError
		if !errors.As(err, &ee) || ee.A != tt.a || ee.B != tt.b {
			t.Errorf("CheckExclusive(%v) = %v, want %s/%s", tt.parts, err, tt.a, tt.b)
		}
	}
}

func TestWiden(t *testing.T) {
	tests := []struct {
		in, want []Part
	}{
		{[]Part{PartMAIL, PartBODY}, []Part{PartMAIL, PartBODY}},
		{[]Part{PartMAIL, PartBODY, PartBODY}, []Part{PartMAIL, PartBODY}},
		{[]Part{PartRCPT, PartBODY, PartSECTIONS}, []Part{PartRCPT, PartRAWDATA}},
		{[]Part{PartALLHEADERS, PartSINGLEHEADERS, PartBODY}, []Part{PartRAWDATA}},
		{[]Part{PartRAWDATA, PartALLHEADERS, PartMAIL}, []Part{PartRAWDATA, PartMAIL}},
	}
	for _, tt := range tests {
		got := Widen(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Widen(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if err := CheckExclusive(got); err != nil {
			t.Errorf("Widen(%v) still exclusive: %v", tt.in, err)
		}
	}
}
