package mapping

// rawScanner holds the keys of a service that talks to a scanner.
type rawScanner struct {
	Address        string   `toml:"address"`
	Timeout        duration `toml:"timeout"`
	MaxConnections int      `toml:"max_connections"`
	MaxSize        size     `toml:"max_size"`
	DKIM           string   `toml:"dkim"`
}

type rawSpamd struct {
	rawServiceHead
	rawScanner
	User          string   `toml:"user"`
	Request       string   `toml:"request"`
	Compress      bool     `toml:"compress"`
	HeaderPrefix  string   `toml:"header_prefix"`
	Tag           score    `toml:"tag"`
	Tag2          score    `toml:"tag2"`
	Kill          score    `toml:"kill"`
	Tag2Action    []string `toml:"tag2_action"`
	SubjectPrefix string   `toml:"subject_prefix"`
	KillAction    string   `toml:"kill_action"`
	Reply         string   `toml:"reply"`
}

type rawRspamd struct {
	rawServiceHead
	rawScanner
	Password      string `toml:"password"`
	SettingsID    string `toml:"settings_id"`
	User          string `toml:"user"`
	Greylist      string `toml:"greylist"`
	SpamHeader    string `toml:"spam_header"`
	SubjectPrefix string `toml:"subject_prefix"`
	HeaderPrefix  string `toml:"header_prefix"`
	RejectReply   string `toml:"reject_reply"`
	TempfailReply string `toml:"tempfail_reply"`
	MaxResponse   size   `toml:"max_response"`
}

type rawAuthVerify struct {
	rawServiceHead
	AuthservID    string   `toml:"authserv_id"`
	Resolver      string   `toml:"resolver"`
	Timeout       duration `toml:"timeout"`
	MaxSignatures int      `toml:"max_signatures"`
	DKIM          bool     `toml:"dkim"`
	SPF           bool     `toml:"spf"`
	DMARC         bool     `toml:"dmarc"`
	DMARCReject   string   `toml:"dmarc_reject"`
	Reply         string   `toml:"reply"`
}

type rawDKIMKey struct {
	Selector string `toml:"selector"`
	KeyFile  string `toml:"key_file"`
}

type rawDKIMSign struct {
	rawServiceHead
	Keys    map[string]rawDKIMKey `toml:"keys"`
	Headers []string              `toml:"headers"`
	Expire  duration              `toml:"expire"`
}

// score is a spam score: a TOML float or integer.
type score float64

func (s *score) decodeTOML(v any) error {
	switch v := v.(type) {
	case float64:
		*s = score(v)
	case int64:
		*s = score(v)
	default:
		return &typeError{"a number like 6.2", v}
	}
	return nil
}
