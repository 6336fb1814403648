// Package layering holds the test that keeps the import graph of the
// project as docs/design.md draws it.
package layering

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/opes-milter/opes-milter"

// pkg is what go list says of one package.
type pkg struct {
	ImportPath   string
	Standard     bool
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// rule forbids a set of packages (those whose path matches from) to import
// what bad reports as forbidden.
type rule struct {
	name string
	from func(path string) bool
	bad  func(imp string) bool
	// tests also applies the rule to the package's test files.
	tests bool
}

func under(prefix string) func(string) bool {
	return func(p string) bool { return p == module+prefix || strings.HasPrefix(p, module+prefix+"/") }
}

func is(path string) func(string) bool {
	return func(p string) bool { return p == module+path }
}

func anyOf(fs ...func(string) bool) func(string) bool {
	return func(p string) bool {
		for _, f := range fs {
			if f(p) {
				return true
			}
		}
		return false
	}
}

func isGoMilter(p string) bool {
	return p == "github.com/d--j/go-milter" || strings.HasPrefix(p, "github.com/d--j/go-milter/")
}

// notStandard reports whether imp is outside the standard library: a
// first path element with a dot (a module path) or one of ours.
func notStandard(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return strings.Contains(first, ".")
}

var rules = []rule{
	{name: "ocp is OCP Core on the standard library only", from: is("/ocp"),
		bad: func(imp string) bool { return notStandard(imp) && imp != module+"/ocp" }, tests: true},
	{name: "ocp/ocpsmtp knows nothing of milter, config or the daemons",
		from: under("/ocp/ocpsmtp"),
		bad:  anyOf(isGoMilter, under("/milter"), under("/mapping"), under("/bridge"), under("/callout"), under("/cmd"))},
	{name: "bridge imports neither milter nor go-milter nor callout; its tests drive the session in process",
		from: under("/bridge"),
		bad:  anyOf(isGoMilter, under("/milter"), under("/callout"), under("/cmd")), tests: true},
	{name: "callout imports neither bridge nor milter nor go-milter",
		from: under("/callout"),
		bad:  anyOf(isGoMilter, under("/milter"), under("/bridge"), under("/cmd")), tests: true},
	{name: "mapping imports no daemon package",
		from: under("/mapping"),
		bad:  anyOf(isGoMilter, under("/milter"), under("/bridge"), under("/callout"), under("/cmd")), tests: true},
	{name: "callout does not force Prometheus on a service author (callout/promobserver has the collectors)",
		from: func(p string) bool { return under("/callout")(p) && !is("/callout/promobserver")(p) },
		bad:  func(imp string) bool { return strings.HasPrefix(imp, "github.com/prometheus/") }},
	{name: "internal/spool, shared by bridge and callout, is on the standard library only", from: is("/internal/spool"),
		bad: notStandard, tests: true},
	{name: "internal/ocptest, the scripted OCP peer of bridge and callout tests, knows only ocp and ocpsmtp",
		from: is("/internal/ocptest"),
		bad: func(imp string) bool {
			return notStandard(imp) && imp != module+"/ocp" && imp != module+"/ocp/ocpsmtp"
		}},
	{name: "only milter and cmd/opes-bench import go-milter",
		from: func(p string) bool { return !under("/milter")(p) && !is("/cmd/opes-bench")(p) },
		bad:  isGoMilter},
}

// TestLayering fails when a package imports what its layer must not.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	n := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		for _, r := range rules {
			if !r.from(p.ImportPath) {
				continue
			}
			imports := p.Imports
			if r.tests {
				imports = append(append(append([]string(nil), imports...), p.TestImports...), p.XTestImports...)
			}
			for _, imp := range imports {
				if r.bad(imp) {
					t.Errorf("%s imports %s: %s", strings.TrimPrefix(p.ImportPath, module+"/"), imp, r.name)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list found only %d packages", n)
	}
}
