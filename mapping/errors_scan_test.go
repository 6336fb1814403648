package mapping

import (
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestScanErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"clamd address", svc("clamd") + "address = \"unix:clamd.sock\"",
			`t.toml:4: callout.services.s.address: "unix:clamd.sock": want unix:/absolute/path`},
		{"clamd address form", svc("clamd") + "address = \"clamd\"",
			`t.toml:4: callout.services.s.address: "clamd": want unix:/path, host:port or inet:port@host`},
		{"clamd on_virus", svc("clamd") + "on_virus = \"pass\"",
			`t.toml:4: callout.services.s.on_virus: "pass" is not one of "reject", "quarantine", "discard", "tag"`},
		{"clamd on_oversize", svc("clamd") + "on_oversize = \"skip\"",
			`t.toml:4: callout.services.s.on_oversize: "skip" is not one of "reject", "quarantine", "discard", "tag"`},
		{"clamd reply 4xx", svc("clamd") + "reply = \"451 4.7.1 later\"",
			`t.toml:4: callout.services.s.reply: a finding is refused for good: want a 5xx reply, not 451`},
		{"clamd verdict_header", svc("clamd") + "verdict_header = \"X Virus\"",
			`t.toml:4: callout.services.s.verdict_header: bad header name "X Virus"`},
		{"clamd timeout", svc("clamd") + "timeout = \"0s\"",
			`t.toml:4: callout.services.s.timeout: must be longer than 0s`},
		{"clamd chunk_size", svc("clamd") + "chunk_size = 10",
			`t.toml:4: callout.services.s.chunk_size: must be between 1KiB and 16MiB`},
		{"clamd max_connections", svc("clamd") + "max_connections = 0",
			`t.toml:4: callout.services.s.max_connections: must be at least 1, not 0`},
		{"clamd transfer", svc("clamd") + "transfer = \"fd\"",
			`t.toml:4: callout.services.s.transfer: "fd" is not one of "auto", "instream", "fildes"`},
		{"clamd fildes over tcp", svc("clamd") + "address = \"127.0.0.1:3310\"\ntransfer = \"fildes\"",
			`t.toml:5: callout.services.s.transfer: fildes passes a file descriptor: address must be a unix socket`},
		{"clamd unknown key", svc("clamd") + "socket = \"/run/clamd.ctl\"",
			`t.toml:4: callout.services.s.socket: unknown key`},
		{"icap url missing", svc("icap"),
			`t.toml:1: callout.services.s.url: required: the ICAP service, like "icap://127.0.0.1:1344/avscan"`},
		{"icap url scheme", svc("icap") + "url = \"http://127.0.0.1:1344/avscan\"",
			`t.toml:4: callout.services.s.url: "http://127.0.0.1:1344/avscan": want "icap://host[:port]/service"`},
	})
}

func TestScanDefaults(t *testing.T) {
	c, err := Load("t.toml", []byte(svc("clamd")+"[callout.services.i]\nuri = \"urn:i\"\nkind = \"icap\"\nurl = \"icap://127.0.0.1/avscan\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := c.Callout.Service("urn:s")
	cl := s.Options.(*Clamd)
	want := ScanPolicy{OnVirus: "reject", OnOversize: "reject", Reply: ocpsmtp.Reply{Code: 554, Text: "5.7.1 Message refused: {signature} found"},
		VerdictHeader: "X-Virus-Scanned", QuarantineHeader: "X-Quarantine-Reason"}
	if cl.Address != "unix:/run/clamav/clamd.ctl" || cl.Timeout != time.Minute || cl.MaxConnections != 16 ||
		cl.Chunk != 64<<10 || cl.Transfer != "auto" || cl.ScanPolicy != want {
		t.Errorf("clamd defaults %+v", cl)
	}
	s, _ = c.Callout.Service("urn:i")
	ic := s.Options.(*ICAP)
	if ic.URL != "icap://127.0.0.1/avscan" || !ic.Preview || ic.MaxConnections != 16 || ic.ScanPolicy != want {
		t.Errorf("icap defaults %+v", ic)
	}
}
