package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestFillTemplate(t *testing.T) {
	text := "# @DOC@ stays\n  # @ALSO@\na = @A@\nb = @A@ @B_2@\n"
	got, err := fillTemplate(text, map[string]string{"A": "1", "B_2": "two", "UNUSED": "x"})
	if err != nil || got != "# @DOC@ stays\n  # @ALSO@\na = 1\nb = 1 two\n" {
		t.Errorf("fillTemplate = %q, %v", got, err)
	}
	_, err = fillTemplate("a = @A@ @C@ @C@\n", map[string]string{})
	if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), "@A@, @C@") {
		t.Errorf("missing values: %v", err)
	}
}

func TestPostfixConfig(t *testing.T) {
	root, err := findRepo()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{repo: root}
	leftover := regexp.MustCompile(`(?m)^[^#\n]*@[A-Z_]+@`)
	for _, milter := range []string{"", "inet:127.0.0.1:9"} {
		mainCF, masterCF, err := e.postfixConfig("/x", milter, "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
		if err != nil {
			t.Fatal(err)
		}
		for _, cf := range []string{mainCF, masterCF} {
			if m := leftover.FindString(cf); m != "" {
				t.Errorf("placeholder left: %q", m)
			}
		}
		for _, want := range []string{"smtpd_milters = " + milter + "\n", "\nnon_smtpd_milters =\n",
			"relayhost = [127.0.0.1]:3\n", "queue_directory = /x/queue\n"} {
			if !strings.Contains(mainCF, want) {
				t.Errorf("main.cf lacks %q", want)
			}
		}
		if strings.Count(mainCF, "\nnon_smtpd_milters") != 1 {
			t.Error("non_smtpd_milters set twice (Postfix warns in every process)")
		}
		for _, want := range []string{"\n127.0.0.1:1 ", "\n127.0.0.1:2 ", "\ncleanup "} {
			if !strings.Contains(masterCF, want) {
				t.Errorf("master.cf lacks %q", want)
			}
		}
	}
}

func TestPortOf(t *testing.T) {
	if p := portOf("127.0.0.1:2525"); p != "2525" {
		t.Errorf("portOf = %q", p)
	}
}
