package mapping

// The raw structs of the callout service kinds. Each embeds the keys all
// kinds share, so one strict decode of the service table checks them all.

type rawServiceHead struct {
	URI  string `toml:"uri"`
	Kind string `toml:"kind"`
}

// serviceHead gives the shared keys of any kind's raw struct.
func (h *rawServiceHead) serviceHead() *rawServiceHead { return h }

type rawRecipientPolicy struct {
	rawServiceHead
	Deny         []string          `toml:"deny"`
	DenyDomains  []string          `toml:"deny_domains"`
	DenyPatterns []string          `toml:"deny_patterns"`
	Allow        []string          `toml:"allow"`
	AllowDomains []string          `toml:"allow_domains"`
	Reply        string            `toml:"reply"`
	Aliases      map[string]string `toml:"aliases"`
}

type rawSenderRewrite struct {
	rawServiceHead
	Addresses map[string]string `toml:"addresses"`
	Domains   map[string]string `toml:"domains"`
}

type rawHeaderTag struct {
	rawServiceHead
	Headers map[string]string `toml:"headers"`
}

type rawSubjectTag struct {
	rawServiceHead
	Prefix             string   `toml:"prefix"`
	MatchSenderOutside []string `toml:"match_sender_outside"`
	DKIM               string   `toml:"dkim"`
}

type rawDisclaimer struct {
	rawServiceHead
	Text string `toml:"text"`
	HTML string `toml:"html"`
	DKIM string `toml:"dkim"`
}

type rawAttachmentFilter struct {
	rawServiceHead
	Extensions   []string `toml:"extensions"`
	ContentTypes []string `toml:"content_types"`
	MaxSize      size     `toml:"max_size"`
	Action       string   `toml:"action"`
	Replacement  string   `toml:"replacement"`
	Reply        string   `toml:"reply"`
	Signed       string   `toml:"signed"`
	Unparsable   string   `toml:"unparsable"`
}

type rawCommand struct {
	rawServiceHead
	Argv      []string          `toml:"argv"`
	Timeout   duration          `toml:"timeout"`
	ExitCodes map[string]string `toml:"exit_codes"`
	Default   string            `toml:"default"`
	Reply     string            `toml:"reply"`
	MaxOutput size              `toml:"max_output"`
}

type rawSizeLimit struct {
	rawServiceHead
	Max   size   `toml:"max"`
	Reply string `toml:"reply"`
}
