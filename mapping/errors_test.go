package mapping

import (
	"errors"
	"strings"
	"testing"
)

// errorCase is a document and the exact error LoadFile must return: all
// problems, one per line, "FILE:LINE: KEY: MSG", sorted by line.
type errorCase struct {
	name string
	doc  string
	want string
}

func runErrorCases(t *testing.T, cases []errorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadString(t, tc.doc)
			if err == nil {
				t.Fatalf("no error; want:\n%s\ndocument:\n%s", tc.want, numbered(tc.doc))
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s\ndocument:\n%s", got, tc.want, numbered(tc.doc))
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is not an *Error: %T", err)
			}
		})
	}
}

func TestSyntaxAndStructureErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"unterminated table header", "[milter\n",
			`t.toml:2: expected '.' or ']' to end table name, but got '\n' instead`},
		{"duplicate key", "[trace]\nvia = true\nvia = false\n",
			"t.toml:3: trace.via: Key 'trace.via' has already been defined."},
		{"unterminated array", "x = [1,\n",
			"t.toml:1: x: unexpected EOF; expected value"},
		{"unknown top-level key", fill("servr = 1"),
			`t.toml:1: servr: unknown key (did you mean "servers"?)`},
		{"unknown top-level table", fill("[rout]\nchain = \"c\""),
			`t.toml:1: rout: unknown key (did you mean "routes"?)`},
		{"unknown milter key", fill("[milter]\nlisen = []"),
			`t.toml:2: milter.lisen: unknown key (did you mean "listen"?)`},
		{"unknown key in an inline table", fill("[milter]\ntimeouts = { rcpt = \"1s\", rpct = \"2s\" }"),
			`t.toml:2: milter.timeouts.rpct: unknown key (did you mean "rcpt"?)`},
		{"unknown key in a dotted key", fill("[milter]\ntimeouts.eom = \"1s\""),
			`t.toml:2: milter.timeouts.eom: unknown key`},
		{"misspelt route key", fill("[[routes]]\nchain = \"c\"\ninformative = [\"MAIL\"]\nadaptiv = [\"RCPT\"]"),
			`t.toml:4: routes[0].adaptiv: unknown key (did you mean "adaptive"?)`},
		{"unknown key in the second route", fill(`[[routes]]
chain = "c"
adaptive = ["RCPT"]
match.authenticated = true

[[routes]]
chain = "c"
adaptive = ["MAIL"]
profil = "sender"`),
			`t.toml:9: routes[1].profil: unknown key (did you mean "profile"?)`},
		{"unknown key in a route match table", fill(`[[routes]]
chain = "c"
adaptive = ["RCPT"]
[routes.match]
client_networks = ["10.0.0.0/8"]`),
			`t.toml:5: routes[0].match.client_networks: unknown key (did you mean "client_network"?)`},
		{"table expected", fill("milter = 1"),
			"t.toml:1: milter: expected a table, got an integer"},
		{"array expected", fill("[milter]\nlisten = \"inet:127.0.0.1:1\""),
			"t.toml:2: milter.listen: expected an array, got a string"},
		{"array of tables expected", "routes = 1\n[trace]\nsystem_uri = \"urn:x\"\n",
			"t.toml:1: routes: expected an array, got an integer"},
		{"quoted key", fill("[services.\"a b\"]\nuri = \"urn:x\"\nur = 1\n[chains.c]\nservices = [\"a b\"]"),
			`t.toml:3: services."a b".ur: unknown key (did you mean "uri"?)`},
		{"several errors sorted by line", fill(`[milter]
max_sessions = 0
max_transactions = 0

[trace]
system_uri = "relative"`),
			strings.Join([]string{
				"t.toml:2: milter.max_sessions: must be at least 1, not 0",
				"t.toml:3: milter.max_transactions: must be at least 1, not 0",
				`t.toml:6: trace.system_uri: "relative" is not an absolute URI (like "http://example.net/service" or "urn:example:service")`,
			}, "\n")},
		{"no milter side required pieces", "[milter]\n",
			strings.Join([]string{
				"t.toml: routes: opes-milter needs at least one [[routes]] table",
				`t.toml: trace.system_uri: required: the URI opes-milter adds to OPES-System trace headers (RFC 3897), like "http://opes.example.net/opes-milter"`,
			}, "\n")},
	})
}
