package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRefusalLogged: on the MTA path (try drives the same bridge as run),
// a refused negotiation is logged with the service the server refused.
func TestRefusalLogged(t *testing.T) {
	base := contribFor(t)
	stale := startCallout(t, strings.Replace(base, `uri = "http://opes-milter.example/services/header-tag"
kind`, `uri = "http://opes-milter.example/services/header-tag-v0"
kind`, 1))
	path := writeTemp(t, "c.toml", strings.Replace(base, `addresses = ["127.0.0.1:8891"]`, `addresses = ["`+stale+`"]`, 1))
	eml := writeTemp(t, "m.eml", "Subject: x\n\nhi\n")
	var out, errb bytes.Buffer
	run(context.Background(), []string{"try", "-config", path, eml}, &out, &errb)
	want := `the callout server refused service \"header-tag\" (http://opes-milter.example/services/header-tag)`
	if !strings.Contains(errb.String(), want) {
		t.Errorf("log lacks %q:\n%s\n%s", want, errb.String(), out.String())
	}
}
