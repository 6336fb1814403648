package mapping

import (
	"log/slog"
	"os"
	"reflect"
	"testing"
	"time"
)

// keyCase sets keys in a valid document and checks what they compile to.
type keyCase struct {
	name string
	doc  string
	got  func(c *Config) any
	want any
}

func runKeyCases(t *testing.T, cases []keyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.doc)
			if got := tc.got(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestMilterKeys(t *testing.T) {
	milter := func(c *Config) *Milter { return &c.Milter }
	runKeyCases(t, []keyCase{
		{"listen default", fill(""), func(c *Config) any { return milter(c).Listen },
			[]Socket{{Network: "tcp", Address: "127.0.0.1:8890"}}},
		{"listen all kinds", fill(`[milter]
listen = ["inet:localhost:1", "inet:[::1]:2", "inet6:[2001:db8::1]:3", "inet6:::1:4", "unix:/run/m.sock", "local:rel.sock"]
socket_mode = "0600"
socket_owner = "postfix:postdrop"`),
			func(c *Config) any { return milter(c).Listen },
			[]Socket{
				{Network: "tcp", Address: "localhost:1"},
				{Network: "tcp", Address: "[::1]:2"},
				{Network: "tcp6", Address: "[2001:db8::1]:3"},
				{Network: "tcp6", Address: "[::1]:4"},
				{Network: "unix", Address: "/run/m.sock", Mode: 0o600, Owner: "postfix:postdrop"},
				{Network: "unix", Address: "rel.sock", Mode: 0o600, Owner: "postfix:postdrop"},
			}},
		{"socket_mode default", fill("[milter]\nlisten = [\"unix:/s\"]"),
			func(c *Config) any { return milter(c).Listen[0].Mode }, os.FileMode(DefaultSocketMode)},
		{"socket_mode octal integer", fill("[milter]\nlisten = [\"unix:/s\"]\nsocket_mode = 0o640"),
			func(c *Config) any { return milter(c).Listen[0].Mode }, os.FileMode(0o640)},
		{"max_sessions", fill("[milter]\nmax_sessions = 7"), func(c *Config) any { return milter(c).MaxSessions }, 7},
		{"max_sessions default", fill(""), func(c *Config) any { return milter(c).MaxSessions }, DefaultMaxSessions},
		{"non_smtp_daemon_names", fill("[milter]\nnon_smtp_daemon_names = [\"LOCAL\"]"), func(c *Config) any { return milter(c).IsNonSMTP("LOCAL") && !milter(c).IsNonSMTP("mx") }, true},
		{"non_smtp_daemon_names default", fill(""), func(c *Config) any { return len(milter(c).NonSMTPDaemons) }, 0},
		{"max_transactions", fill("[milter]\nmax_transactions = 9"), func(c *Config) any { return milter(c).MaxTransactions }, 9},
		{"log_level", fill("[milter]\nlog_level = \"debug\""), func(c *Config) any { return milter(c).LogLevel }, slog.LevelDebug},
		{"log_level default", fill(""), func(c *Config) any { return milter(c).LogLevel }, slog.LevelInfo},
		{"log_format", fill("[milter]\nlog_format = \"json\""), func(c *Config) any { return milter(c).LogFormat }, "json"},
		{"metrics_listen", fill("[milter]\nmetrics_listen = \"127.0.0.1:9187\""), func(c *Config) any { return milter(c).MetricsListen }, "127.0.0.1:9187"},
		{"pprof", fill("[milter]\nmetrics_listen = \"127.0.0.1:9187\"\npprof = true"), func(c *Config) any { return milter(c).Pprof }, true},
		{"pprof default", fill(""), func(c *Config) any { return milter(c).Pprof }, false},
		{"spool_dir", fill("[milter]\nspool_dir = \"/var/spool/opes-milter\""), func(c *Config) any { return milter(c).SpoolDir }, "/var/spool/opes-milter"},
		{"spool_memory", fill("[milter]\nspool_memory = \"512KB\""), func(c *Config) any { return milter(c).SpoolMemory }, int64(512000)},
		{"spool_memory zero", fill("[milter]\nspool_memory = 0"), func(c *Config) any { return milter(c).SpoolMemory }, int64(0)},
		{"max_message_size", fill("[milter]\nmax_message_size = \"10MiB\""), func(c *Config) any { return milter(c).MaxMessageSize }, int64(10 << 20)},
		{"max_message_size integer", fill("[milter]\nmax_message_size = 1000"), func(c *Config) any { return milter(c).MaxMessageSize }, int64(1000)},
		{"max_message_size default", fill(""), func(c *Config) any { return milter(c).MaxMessageSize }, int64(DefaultMaxMessageSize)},
		{"resolver", fill("[milter]\nresolver = \"127.0.0.1:5353\""), func(c *Config) any { return milter(c).Resolver }, "127.0.0.1:5353"},
		{"MTA bounds default", fill(""), func(c *Config) any { return []any{milter(c).MaxConnections, milter(c).TransactionIdleTimeout} },
			[]any{DefaultMaxConnections, DefaultTransactionIdleTimeout}},
		{"MTA bounds", fill("[milter]\nmax_connections = 600\ntransaction_idle_timeout = \"20s\""),
			func(c *Config) any { return []any{milter(c).MaxConnections, milter(c).TransactionIdleTimeout} },
			[]any{600, 20 * time.Second}},
		{"answer limits default", fill(""), func(c *Config) any { return milter(c).AnswerLimits },
			AnswerLimits{HeaderChanges: DefaultMaxHeaderChanges, HeaderChangeBytes: DefaultMaxHeaderChangeBytes,
				AddedRecipients: DefaultMaxAddedRecipients, AdaptedSize: DefaultMaxMessageSize}},
		{"max_adapted_size follows max_message_size", fill("[milter]\nmax_message_size = \"10MiB\""),
			func(c *Config) any { return milter(c).AnswerLimits.AdaptedSize }, int64(10 << 20)},
		{"answer limits", fill("[milter]\nmax_header_changes = 5\nmax_header_change_bytes = \"2KiB\"\nmax_added_recipients = 7\nmax_adapted_size = \"3MiB\""),
			func(c *Config) any { return milter(c).AnswerLimits },
			AnswerLimits{HeaderChanges: 5, HeaderChangeBytes: 2 << 10, AddedRecipients: 7, AdaptedSize: 3 << 20}},
		{"oversize", fill("[milter]\noversize = \"skip\""), func(c *Config) any { return milter(c).Oversize }, SkipAdaptation},
		{"oversize default", fill(""), func(c *Config) any { return milter(c).Oversize }, Reject},
		{"timeouts", fill(`[milter.timeouts]
connect = "1s"
mail = "3s"
rcpt = "4s"
end_of_message = "2m"
progress_interval = "500ms"`),
			func(c *Config) any { return milter(c).Timeouts },
			Timeouts{time.Second, 3 * time.Second, 4 * time.Second, 2 * time.Minute, 500 * time.Millisecond}},
		{"timeouts default", fill(""), func(c *Config) any { return milter(c).Timeouts },
			Timeouts{DefaultConnectTimeout, DefaultMailTimeout, DefaultRcptTimeout, DefaultEOMTimeout, DefaultProgressInterval}},
		{"mta limits raised for Postfix", fill("[milter.mta]\ncommand_timeout = \"30s\"\ncontent_timeout = \"10m\"\n[milter.timeouts]\nrcpt = \"25s\"\nend_of_message = \"9m\""),
			func(c *Config) any {
				return []any{milter(c).MTA, milter(c).Timeouts.Rcpt, milter(c).Timeouts.EndOfMessage}
			},
			[]any{MTALimits{30 * time.Second, 10 * time.Minute}, 25 * time.Second, 9 * time.Minute}},
		{"trace", fill("[trace]\nsystem_uri = \"http://opes.example.net/m\"\nprivacy_uri = \"http://opes.example.net/p\"\nvia = false"),
			func(c *Config) any { return c.Trace }, Trace{"http://opes.example.net/m", "http://opes.example.net/p", false}},
		{"trace via default", fill(""), func(c *Config) any { return c.Trace.Via }, true},
		{"bypass default", fill(""), func(c *Config) any { return c.Bypass }, Bypass{}},
		{"bypass", fill("[bypass]\nheader = true\nallowed = [\"urn:a\", \"http://x/b\"]"),
			func(c *Config) any { return c.Bypass }, Bypass{Header: true, Allowed: []string{"urn:a", "http://x/b"}}},
		{"bypass any", fill("[bypass]\nheader = true\nallowed = [\"*\"]"),
			func(c *Config) any { return c.Bypass }, Bypass{Header: true, Allowed: []string{"*"}, Any: true}},
	})
}
