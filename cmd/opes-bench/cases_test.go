package main

import (
	"strings"
	"testing"
)

func TestCaseByID(t *testing.T) {
	tests := []struct {
		id    string
		ok    bool
		alt   bool
		title string
	}{
		{"a", true, false, "(a) go-milter no-op, every event"},
		{"postfix+b", true, false, "Postfix + (b)"},
		{"b-alt", true, true, "(b) opes-milter + opes-callout, pass-through, alt build"},
		{"postfix+b-alt", true, true, "Postfix + (b), alt build"},
		{"a-alt", false, false, ""},       // no opes-milter in (a)
		{"postfix-alt", false, false, ""}, // nor in Postfix alone
		{"d", true, false, "(d) opes-milter + opes-callout, clamd service"},
		{"postfix+clamav-milter", true, false, "Postfix + clamav-milter"},
		{"postfix+d-alt", true, true, "Postfix + (d), alt build"},
		{"clamd-alt", false, false, ""}, // no opes-milter in clamd directly
		{"postfix+rspamd-alt", true, true, "Postfix + opes-milter + opes-callout, rspamd service, alt build"},
		{"postfix+rspamd-milter-alt", false, false, ""}, // rspamd's own milter
		{"postfix+rspamd-local", true, false, "Postfix + opes-milter -local, rspamd service"},
		{"postfix+rspamd-local-alt", false, false, ""}, // -local cases have no twin
		{"postfix+d-local", true, false, "Postfix + (d), opes-milter -local"},
		{"e", false, false, ""},
	}
	for _, tt := range tests {
		c, ok := caseByID(tt.id)
		if ok != tt.ok || c.Alt != tt.alt || c.Title != tt.title || (ok && c.ID != tt.id) {
			t.Errorf("caseByID(%q) = %+v, %v", tt.id, c, ok)
		}
	}
}

// TestAppendCaseOnce: a case named after its twin brought it (postfix+d,
// then postfix+d-alt with -alt-bin) runs once per round, not twice.
func TestAppendCaseOnce(t *testing.T) {
	var cases []Case
	for _, id := range []string{"postfix+d", "postfix+d-alt", "postfix+d-alt", "postfix+d"} {
		c, ok := caseByID(id)
		if !ok {
			t.Fatalf("no case %q", id)
		}
		cases = appendCase(cases, c)
		if !c.Alt {
			cases = appendCase(cases, altOf(c))
		}
	}
	if len(cases) != 2 || cases[0].ID != "postfix+d" || cases[1].ID != "postfix+d-alt" {
		t.Errorf("cases = %+v, want postfix+d and its twin once each", cases)
	}
}

// TestRoundOrder: each case and its alt twin swap places in even rounds;
// a case without its twin beside it keeps its place.
func TestRoundOrder(t *testing.T) {
	var cases []Case
	for _, id := range []string{"a", "b", "b-alt", "c", "postfix+d", "postfix+d-alt"} {
		c, ok := caseByID(id)
		if !ok {
			t.Fatalf("no case %q", id)
		}
		cases = append(cases, c)
	}
	ids := func(cs []Case) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.ID)
		}
		return strings.Join(s, ",")
	}
	for round, want := range map[int]string{
		1: "a,b,b-alt,c,postfix+d,postfix+d-alt",
		2: "a,b-alt,b,c,postfix+d-alt,postfix+d",
		3: "a,b,b-alt,c,postfix+d,postfix+d-alt",
	} {
		if got := ids(roundOrder(cases, round)); got != want {
			t.Errorf("round %d: %s, want %s", round, got, want)
		}
	}
	if got := ids(cases); got != "a,b,b-alt,c,postfix+d,postfix+d-alt" {
		t.Errorf("roundOrder changed its argument: %s", got)
	}
}
