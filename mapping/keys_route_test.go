package mapping

import (
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestServerChainKeys(t *testing.T) {
	runKeyCases(t, []keyCase{
		{"server set defaults", fill(""),
			func(c *Config) any { s, _ := c.Server("s"); return *s },
			ServerSet{Name: "s", Addresses: []string{"127.0.0.1:1"}, Strategy: Failover, Connections: DefaultConnections,
				ConnectTimeout: DefaultDialTimeout, HandshakeTimeout: DefaultHandshakeTimeout, IdleTimeout: DefaultIdleTimeout,
				FailureLimit: DefaultFailureLimit, RevivalDelay: DefaultRevivalDelay, ResolveInterval: DefaultResolveInterval}},
		{"server set keys", fill(`[servers.s]
addresses = ["callout.example:8891", "[2001:db8::2]:8891", "srv:_OCP._tcp.Pool.example."]
strategy = "round-robin"
connections = 4
connect_timeout = "1s"
handshake_timeout = "2s"
idle_timeout = "3s"
failure_limit = 2
revival_delay = "4s"
resolve_interval = "5s"
tls = { enabled = false, ca_file = "/nonexistent" }`),
			func(c *Config) any { s, _ := c.Server("s"); return *s },
			ServerSet{Name: "s", Addresses: []string{"callout.example:8891", "[2001:db8::2]:8891", "srv:_ocp._tcp.pool.example"}, Strategy: RoundRobin, Connections: 4,
				ConnectTimeout: time.Second, HandshakeTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second,
				FailureLimit: 2, RevivalDelay: 4 * time.Second, ResolveInterval: 5 * time.Second}},
		{"server sets sorted", fill("[servers.b]\naddresses = [\"127.0.0.1:2\"]\n[servers.a]\naddresses = [\"127.0.0.1:1\"]\n[chains.c]\nservices = [\"a\"]\nserver = \"b\""),
			func(c *Config) any { return []string{c.Servers[0].Name, c.Servers[1].Name, c.Chains[0].Server.Name} },
			[]string{"a", "b", "b"}},
		{"service", fill("[services.a]\nuri = \"http://opes.example/a\"\nparams = { mode = \"strict\", level = \"3\" }"),
			func(c *Config) any { s, _ := c.Service("a"); return *s },
			Service{Name: "a", URI: "http://opes.example/a", Params: map[string]string{"mode": "strict", "level": "3"}}},
		{"chain", fill(`[services.a]
uri = "urn:a"
[services.b]
uri = "urn:b"
[chains.c]
services = ["b", "a"]
server = "s"
[chains.c.on_failure]
connect = "accept"
timeout = "reject"
protocol = "quarantine"
server = "tempfail"`),
			func(c *Config) any {
				ch, _ := c.Chain("c")
				return []any{ch.Services[0].Name, ch.Services[1].Name, ch.Server.Name, ch.OnFailure}
			},
			[]any{"b", "a", "s", FailurePolicy{Connect: Accept, Timeout: Reject, Protocol: Quarantine, Server: TempFail}}},
		{"chain failure default", fill(""),
			func(c *Config) any { ch, _ := c.Chain("c"); return ch.OnFailure }, FailurePolicy{}},
	})
}

func TestRouteKeys(t *testing.T) {
	runKeyCases(t, []keyCase{
		{"route defaults", fill(""),
			func(c *Config) any {
				r := c.Routes[0]
				return []any{r.Name, r.Index, r.Profile, r.Chain.Name, r.Adaptive, r.Informative, r.HeaderList, r.Match.IsEmpty()}
			},
			[]any{"route-1", 0, Receiver, "c", []ocpsmtp.Part{ocpsmtp.PartRCPT}, []ocpsmtp.Part(nil), []string(nil), true}},
		{"route keys", fill(`[[routes]]
name = "outbound"
profile = "sender"
chain = "c"
adaptive = ["SINGLEHEADERS", "MAIL", "SECTIONS"]
informative = ["RCPT", "EHLO", "IP"]
header_list = ["From", "*"]`),
			func(c *Config) any {
				r := c.Routes[0]
				return []any{r.Name, r.Profile, r.Adaptive, r.Informative, r.HeaderList}
			},
			[]any{"outbound", Sender, []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartSINGLEHEADERS, ocpsmtp.PartSECTIONS}, []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartEHLO, ocpsmtp.PartRCPT}, []string{"From", "*"}}},
		{"header_list default", fill(route + "informative = [\"SINGLEHEADERS\", \"BODY\"]"),
			func(c *Config) any { return c.Routes[0].HeaderList }, []string{"*"}},
		{"match keys", fill(route + `adaptive = ["RCPT"]
[routes.match]
daemon_name = ["smtpd", "submission"]
client_network = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7", "::1"]
authenticated = true
sender_domain = ["Example.COM", ".example.org."]
rcpt_domain = ["example.net"]
non_smtp = false`),
			func(c *Config) any { return c.Routes[0].Match },
			Match{
				DaemonNames: []string{"smtpd", "submission"},
				ClientNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"),
					netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("::1/128")},
				Authenticated: ptr(true),
				SenderDomains: []string{"example.com", ".example.org"},
				RcptDomains:   []string{"example.net"},
				NonSMTP:       ptr(false),
			}},
		{"skip", fill("[[skip]]\nname = \"monitoring\"\nclient_network = [\"192.0.2.10\"]\n[[skip]]\nnon_smtp = true"),
			func(c *Config) any {
				return []any{c.Skips[0].Name, c.Skips[0].Match.ClientNetworks, c.Skips[1].Name, *c.Skips[1].Match.NonSMTP}
			},
			[]any{"monitoring", []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}, "skip-2", true}},
		{"arrays of inline tables", fill("routes = [\n  { chain = \"c\", adaptive = [\"RCPT\"], match = { authenticated = true } },\n  { chain = \"c\", informative = [\"MAIL\"] },\n]"),
			func(c *Config) any { return []string{c.Routes[0].Name, c.Routes[1].Name} }, []string{"route-1", "route-2"}},
	})
}

func TestCalloutKeys(t *testing.T) {
	opts := func(c *Config) any { return c.Callout.Services[0].Options }
	runKeyCases(t, []keyCase{
		{"no callout", fill(""), func(c *Config) any { return c.Callout }, (*Callout)(nil)},
		{"callout only", "[callout]\n", func(c *Config) any { return []any{c.HasMilter(), c.Callout.Listen} },
			[]any{false, []string{DefaultCalloutListen}}},
		{"callout keys", `[callout]
listen = ["127.0.0.1:1", "[::1]:2"]
metrics_listen = "127.0.0.1:9188"
pprof = true
log_level = "warn"
log_format = "json"
max_connections = 3
idle_timeout = "4s"
handshake_timeout = "5s"
drain_timeout = "6s"
tls = { enabled = false }`,
			func(c *Config) any { return *c.Callout },
			Callout{Listen: []string{"127.0.0.1:1", "[::1]:2"}, MetricsListen: "127.0.0.1:9188", Pprof: true, LogLevel: 4, LogFormat: "json",
				MaxConnections: 3, IdleTimeout: 4 * time.Second, HandshakeTimeout: 5 * time.Second, DrainTimeout: 6 * time.Second}},
		{"services sorted, found by URI", svc("disclaimer") + "text = \"t\"\n[callout.services.a]\nuri = \"urn:a\"\nkind = \"size-limit\"\nmax = 5",
			func(c *Config) any {
				s, ok := c.Callout.Service("urn:s")
				return []any{c.Callout.Services[0].Name, c.Callout.Services[0].Kind, s.Name, ok}
			},
			[]any{"a", KindSizeLimit, "s", true}},
		{"recipient-policy", svc("recipient-policy") + `deny = ["Blocked@Example.com"]
deny_domains = ["spam.example"]
deny_patterns = ["^test-.*@"]
allow = ["postmaster@spam.example"]
allow_domains = [".ok.example"]
reply = "550 5.1.1 <{rcpt}>: no"
aliases = { "Old@example.com" = "new@example.com" }`,
			opts, &RecipientPolicy{
				Deny: []string{"blocked@example.com"}, DenyDomains: []string{"spam.example"},
				DenyPatterns: []*regexp.Regexp{regexp.MustCompile("^test-.*@")},
				Allow:        []string{"postmaster@spam.example"}, AllowDomains: []string{".ok.example"},
				Reply: ocpsmtp.Reply{Code: 550, Text: "5.1.1 <{rcpt}>: no"}, Aliases: map[string]string{"old@example.com": "new@example.com"},
			}},
		{"recipient-policy default reply", svc("recipient-policy") + "deny = [\"a@example.com\"]",
			func(c *Config) any { return c.Callout.Services[0].Options.(*RecipientPolicy).Reply },
			ocpsmtp.Reply{Code: 550, Text: "5.1.1 Recipient address rejected"}},
		{"sender-rewrite", svc("sender-rewrite") + "addresses = { \"a@x.example\" = \"b@y.example\" }\ndomains = { \"Old.example\" = \"new.example\" }",
			opts, &SenderRewrite{Addresses: map[string]string{"a@x.example": "b@y.example"}, Domains: map[string]string{"old.example": "new.example"}}},
		{"header-tag", svc("header-tag") + "headers = { X-B = \"2\", X-A = \"{service} at {time}\" }",
			opts, &HeaderTag{Headers: []Header{{"X-A", "{service} at {time}"}, {"X-B", "2"}}}},
		{"subject-tag", svc("subject-tag") + "prefix = \"[EXTERNAL] \"\nmatch_sender_outside = [\"Example.com\"]",
			opts, &SubjectTag{Prefix: "[EXTERNAL] ", MatchSenderOutside: []string{"example.com"}, DKIM: "skip"}},
		{"disclaimer", svc("disclaimer") + "text = \"t\"\nhtml = \"<p>h</p>\"", opts, &Disclaimer{Text: "t", HTML: "<p>h</p>", DKIM: "skip"}},
		{"attachment-filter", svc("attachment-filter") + `extensions = [".EXE", ".scr"]
content_types = ["application/x-msdownload", "Video/*"]
max_size = "5MiB"
action = "replace"
replacement = "removed"
reply = "552 5.3.4 no"
signed = "reject"
unparsable = "quarantine"`,
			opts, &AttachmentFilter{Extensions: []string{".exe", ".scr"}, ContentTypes: []string{"application/x-msdownload", "video/*"},
				MaxSize: 5 << 20, Action: "replace", Replacement: "removed", Reply: ocpsmtp.Reply{Code: 552, Text: "5.3.4 no"}, Signed: "reject", Unparsable: "quarantine"}},
		{"attachment-filter defaults", svc("attachment-filter") + "max_size = 1",
			opts, &AttachmentFilter{MaxSize: 1, Action: "remove", Replacement: DefaultAttachmentReplacement,
				Reply: ocpsmtp.Reply{Code: 554, Text: "5.7.1 Message contains a forbidden attachment"}, Signed: "pass", Unparsable: "reject"}},
		{"command", svc("command") + `argv = ["spamc", "-E"]
timeout = "20s"
exit_codes = { 0 = "pass", 1 = "reject" }
default = "replace"
reply = "550 5.7.1 spam"
max_output = "1MiB"`,
			opts, &Command{Argv: []string{"spamc", "-E"}, Timeout: 20 * time.Second, ExitCodes: map[int]string{0: "pass", 1: "reject"},
				Default: "replace", Reply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 spam"}, MaxOutput: 1 << 20}},
		{"command defaults", svc("command") + "argv = [\"cat\"]",
			opts, &Command{Argv: []string{"cat"}, Timeout: DefaultCommandTimeout, ExitCodes: map[int]string{}, Default: "tempfail",
				Reply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 Message rejected by content filter"}, MaxOutput: DefaultCommandMaxOutput}},
		{"size-limit", svc("size-limit") + "max = \"10MB\"\nreply = \"552 too big\"", opts, &SizeLimit{Max: 10e6, Reply: ocpsmtp.Reply{Code: 552, Text: "too big"}}},
		{"size-limit default reply", svc("size-limit") + "max = 1",
			opts, &SizeLimit{Max: 1, Reply: ocpsmtp.Reply{Code: 552, Text: "5.3.4 Message size exceeds fixed maximum message size"}}},
	})
}
