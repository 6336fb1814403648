package mapping

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// The kinds of the content scanners opes-callout talks to.
const (
	// KindClamd scans with ClamAV's clamd (kind clamd).
	KindClamd Kind = "clamd"
	// KindICAP scans (or adapts) with an ICAP server, RFC 3507 (kind icap).
	KindICAP Kind = "icap"
)

// Outcomes of a scanner's finding (ScanPolicy.OnVirus and OnOversize).
const (
	// ScanReject refuses the message with ScanPolicy.Reply.
	ScanReject = "reject"
	// ScanQuarantine accepts the message and has the MTA hold it, with
	// ScanPolicy.QuarantineHeader saying why.
	ScanQuarantine = "quarantine"
	// ScanDiscard accepts the message and drops it.
	ScanDiscard = "discard"
	// ScanTag delivers the message with the verdict header naming the
	// finding.
	ScanTag = "tag"
)

// scanOutcomes are the values of on_virus and on_oversize.
func scanOutcomes() []string { return []string{ScanReject, ScanQuarantine, ScanDiscard, ScanTag} }

// Defaults of the scanner kinds.
const (
	DefaultClamdAddress         = "unix:/run/clamav/clamd.ctl"
	DefaultVirusScanTimeout     = 60 * time.Second
	DefaultVirusScanConnections = 16
	DefaultClamdChunk           = 64 << 10
	DefaultScanOutcome          = ScanReject
	DefaultScanReply            = "554 5.7.1 Message refused: {signature} found"
	DefaultVerdictHeader        = "X-Virus-Scanned"
	DefaultQuarantineHeader     = "X-Quarantine-Reason"
	DefaultICAPPreview          = true
	DefaultICAPMaxConnection    = 16
)

// ScanPolicy is what a scanner's verdict does with the message, shared by
// the clamd and icap kinds.
type ScanPolicy struct {
	// OnVirus is the outcome of a finding (a signature matched):
	// ScanReject, ScanQuarantine, ScanDiscard or ScanTag.
	OnVirus string
	// OnOversize is the outcome when the scanner could not scan all of the
	// message: clamd's Heuristics.Limits.Exceeded findings (AlertExceedsMax
	// yes) and its INSTREAM size limit (StreamMaxLength).
	OnOversize string
	// Reply refuses the message (ScanReject); "{signature}" expands to the
	// finding's name.
	Reply ocpsmtp.Reply
	// VerdictHeader names the header field added to every scanned message
	// that is delivered: "clean", or the finding when tagged ("" adds
	// none).
	VerdictHeader string
	// QuarantineHeader names the header field that says why a message was
	// quarantined ("" adds none).
	QuarantineHeader string
}

// Clamd scans the message with clamd (kind clamd).
type Clamd struct {
	// Address is where clamd listens: "unix:/path", an absolute path,
	// "tcp:host:port", "inet:port@host" or "host:port".
	Address string
	// Timeout bounds one scan (connecting, streaming, the verdict).
	Timeout time.Duration
	// MaxConnections bounds the concurrent scans.
	MaxConnections int
	// Chunk is the size of one INSTREAM chunk.
	Chunk int
	// Transfer is how the message reaches clamd: ClamdInstream (streamed),
	// ClamdFildes (a file descriptor passed over the unix socket) or
	// ClamdAuto (the default: ClamdFildes over a unix socket for messages
	// up to ClamdAutoFildesMax, ClamdInstream otherwise).
	Transfer string
	ScanPolicy
}

// The values of Clamd.Transfer.
const (
	ClamdInstream = "instream"
	ClamdFildes   = "fildes"
	ClamdAuto     = "auto"
)

// ClamdAutoFildesMax is the largest message that transfer = "auto" passes
// as a file descriptor; larger ones are streamed, so that clamd's
// StreamMaxLength still bounds them and the descriptor's in-memory copy
// stays small.
const ClamdAutoFildesMax = 1 << 20

// ICAP scans or adapts the message with an ICAP server (kind icap).
type ICAP struct {
	// URL is the service, "icap://host[:port]/service" (port 1344 by
	// default).
	URL string
	// Timeout bounds one exchange (OPTIONS, or a RESPMOD and its answer).
	Timeout time.Duration
	// MaxConnections bounds the connections; the server's Max-Connections
	// bounds them further.
	MaxConnections int
	// Preview sends the server's Preview size first when it asks for one.
	Preview bool
	ScanPolicy
}

// Kind implements Options.
func (*Clamd) Kind() Kind { return KindClamd }

// Kind implements Options.
func (*ICAP) Kind() Kind { return KindICAP }

type rawScanPolicy struct {
	OnVirus          string `toml:"on_virus"`
	OnOversize       string `toml:"on_oversize"`
	Reply            string `toml:"reply"`
	VerdictHeader    string `toml:"verdict_header"`
	QuarantineHeader string `toml:"quarantine_header"`
}

func (p *rawScanPolicy) setDefaults() {
	*p = rawScanPolicy{
		OnVirus: DefaultScanOutcome, OnOversize: DefaultScanOutcome, Reply: DefaultScanReply,
		VerdictHeader: DefaultVerdictHeader, QuarantineHeader: DefaultQuarantineHeader,
	}
}

type rawClamd struct {
	rawServiceHead
	Address        string   `toml:"address"`
	Timeout        duration `toml:"timeout"`
	MaxConnections int      `toml:"max_connections"`
	Chunk          size     `toml:"chunk_size"`
	Transfer       string   `toml:"transfer"`
	rawScanPolicy
}

func (c *rawClamd) setDefaults() {
	c.Address = DefaultClamdAddress
	c.Timeout = duration(DefaultVirusScanTimeout)
	c.MaxConnections = DefaultVirusScanConnections
	c.Chunk = DefaultClamdChunk
	c.Transfer = ClamdAuto
	c.rawScanPolicy.setDefaults() // an unexported embedded field: setDefaults does not reach it
}

type rawICAP struct {
	rawServiceHead
	URL            string   `toml:"url"`
	Timeout        duration `toml:"timeout"`
	MaxConnections int      `toml:"max_connections"`
	Preview        bool     `toml:"preview"`
	rawScanPolicy
}

func (c *rawICAP) setDefaults() {
	c.Timeout = duration(DefaultVirusScanTimeout)
	c.MaxConnections = DefaultICAPMaxConnection
	c.Preview = DefaultICAPPreview
	c.rawScanPolicy.setDefaults()
}

func (o *optionsBuilder) scanPolicy(r *rawScanPolicy) ScanPolicy {
	o.enum("on_virus", r.OnVirus, scanOutcomes()...)
	o.enum("on_oversize", r.OnOversize, scanOutcomes()...)
	p := ScanPolicy{
		OnVirus: r.OnVirus, OnOversize: r.OnOversize, Reply: o.reply("reply", r.Reply),
		VerdictHeader: r.VerdictHeader, QuarantineHeader: r.QuarantineHeader,
	}
	if p.Reply.Code != 0 && (p.Reply.Code < 500 || p.Reply.Code > 599) {
		o.errorf(ErrValue, o.k("reply"), "a finding is refused for good: want a 5xx reply, not %d", p.Reply.Code)
	}
	for _, h := range []struct{ key, name string }{{"verdict_header", r.VerdictHeader}, {"quarantine_header", r.QuarantineHeader}} {
		if h.name == "" {
			continue
		}
		if err := checkHeaderName(h.name); err != nil {
			o.errorf(ErrValue, o.k(h.key), "%v", err)
		}
	}
	return p
}

func (o *optionsBuilder) clamd(r *rawClamd) *Clamd {
	c := &Clamd{
		Address:        r.Address,
		Timeout:        o.positive(o.k("timeout"), r.Timeout),
		MaxConnections: r.MaxConnections,
		Chunk:          int(r.Chunk),
		Transfer:       r.Transfer,
		ScanPolicy:     o.scanPolicy(&r.rawScanPolicy),
	}
	if err := checkBackendAddress(r.Address); err != nil {
		o.errorf(ErrValue, o.k("address"), "%v", err)
	}
	o.enum("transfer", r.Transfer, ClamdAuto, ClamdInstream, ClamdFildes)
	if r.Transfer == ClamdFildes && !strings.HasPrefix(r.Address, "unix:") && !strings.HasPrefix(r.Address, "/") {
		o.errorf(ErrConflict, o.k("transfer"), "fildes passes a file descriptor: address must be a unix socket")
	}
	o.atLeast(o.k("max_connections"), r.MaxConnections, 1)
	if r.Chunk < 1024 || r.Chunk > 16<<20 {
		o.errorf(ErrValue, o.k("chunk_size"), "must be between 1KiB and 16MiB")
	}
	return c
}

func (o *optionsBuilder) icap(r *rawICAP) *ICAP {
	c := &ICAP{
		URL:            r.URL,
		Timeout:        o.positive(o.k("timeout"), r.Timeout),
		MaxConnections: r.MaxConnections,
		Preview:        r.Preview,
		ScanPolicy:     o.scanPolicy(&r.rawScanPolicy),
	}
	if r.URL == "" {
		o.errorf(ErrMissing, o.k("url"), `required: the ICAP service, like "icap://127.0.0.1:1344/avscan"`)
	} else if u, err := url.Parse(r.URL); err != nil || u.Scheme != "icap" || u.Host == "" || u.User != nil {
		o.errorf(ErrValue, o.k("url"), `%q: want "icap://host[:port]/service"`, r.URL)
	}
	o.atLeast(o.k("max_connections"), r.MaxConnections, 1)
	return c
}

// checkBackendAddress checks the address forms of callout.ParseBackendAddress
// (mapping does not import callout): "unix:/path", "/path", "tcp:host:port",
// "inet:port@host", "host:port".
func checkBackendAddress(s string) error {
	switch {
	case strings.HasPrefix(s, "unix:"):
		if !strings.HasPrefix(strings.TrimPrefix(s, "unix:"), "/") {
			return fmt.Errorf("%q: want unix:/absolute/path", s)
		}
		return nil
	case strings.HasPrefix(s, "/"):
		return nil
	case strings.HasPrefix(s, "inet:"):
		port, host, ok := strings.Cut(strings.TrimPrefix(s, "inet:"), "@")
		if !ok || host == "" || port == "" {
			return fmt.Errorf("%q: want inet:port@host", s)
		}
		return nil
	}
	if _, err := parseHostPort(strings.TrimPrefix(s, "tcp:")); err != nil {
		return fmt.Errorf("%q: want unix:/path, host:port or inet:port@host", s)
	}
	return nil
}
