package bridge

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestSplitMessage(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		fields []headerField
		body   string
		err    string
	}{
		{"simple", "A: 1\r\nB:2\r\n\r\nbody\r\n", []headerField{{"A", " 1"}, {"B", "2"}}, "body\r\n", ""},
		{"folded", "A: 1\r\n\t2\r\n\r\n", []headerField{{"A", " 1\r\n\t2"}}, "", ""},
		{"header only", "A: 1\r\n", []headerField{{"A", " 1"}}, "", ""},
		{"lf only", "A: 1\n\n", nil, "", "without CR"},
		{"no colon", "A 1\r\n\r\n", nil, "", "malformed"},
		{"leading fold", " x\r\n\r\n", nil, "", "continuation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields, body, err := splitMessage(strings.NewReader(tt.in), 0)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fields, tt.fields) {
				t.Errorf("fields = %q, want %q", fields, tt.fields)
			}
			b, _ := io.ReadAll(body)
			if string(b) != tt.body {
				t.Errorf("body = %q, want %q", b, tt.body)
			}
		})
	}
}

func TestSplitMessageLimit(t *testing.T) {
	_, _, err := splitMessage(strings.NewReader(strings.Repeat("A: 1\r\n", 100)+"\r\n"), 50)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestDiffHeaders(t *testing.T) {
	orig := []headerField{{"Received", " x"}, {"Subject", " a"}, {"X-A", " 1"}, {"X-A", " 2"}, {"OPES-System", " old"}}
	adapted := []headerField{{"Received", " x"}, {"Subject", " [tag] a"}, {"X-A", " 1"}, {"OPES-System", " old"}, {"X-New", " n"}}
	got, err := diffHeaders(orig, adapted)
	if err != nil {
		t.Fatal(err)
	}
	want := []headerOp{
		{index: 1, name: "Subject", value: " [tag] a"},
		{index: 2, name: "X-A", value: ""},
		{insert: true, name: "X-New", value: " n"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ops = %+v\nwant %+v", got, want)
	}
}

func TestTraceInsertIndex(t *testing.T) {
	tests := []struct {
		fields []headerField
		want   int
	}{
		{nil, 0},
		{[]headerField{{"Subject", ""}}, 0},
		{[]headerField{{"Received", ""}, {"Received", ""}, {"Subject", ""}}, 2},
		{[]headerField{{"Received", ""}, {"OPES-Via", ""}, {"OPES-System", ""}}, 1},
		{[]headerField{{"Subject", ""}, {"opes-system", ""}}, 1},
	}
	for i, tt := range tests {
		if got := traceInsertIndex(tt.fields); got != tt.want {
			t.Errorf("%d: got %d, want %d", i, got, tt.want)
		}
	}
}

func TestTraceFields(t *testing.T) {
	got := traceFields("http://opes.example/p", []string{"urn:a", "urn:b"}, traceUnadapted, true, "")
	want := []headerField{
		{"OPES-System", " http://opes.example/p; status=unadapted"},
		{"OPES-Via", " http://opes.example/p,\r\n\turn:a,\r\n\turn:b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// [trace] privacy_uri: a parameter of the OPES-System entry only.
	got = traceFields("http://opes.example/p", []string{"urn:a"}, traceAdapted, true, "http://opes.example/privacy")
	want = []headerField{
		{"OPES-System", ` http://opes.example/p; privacy-policy="http://opes.example/privacy"`},
		{"OPES-Via", " http://opes.example/p,\r\n\turn:a"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestDiffHeadersRefusesTraceChanges(t *testing.T) {
	orig := []headerField{{"OPES-System", " old"}, {"Subject", " a"}}
	for _, adapted := range [][]headerField{
		{{"Subject", " a"}},
		{{"OPES-System", " new"}, {"Subject", " a"}},
		{{"OPES-System", " old"}, {"OPES-Via", " x"}, {"Subject", " a"}},
	} {
		if _, err := diffHeaders(orig, adapted); err == nil {
			t.Errorf("no error for %q", adapted)
		}
	}
}
