package mapping

// The raw* structs mirror the file. The decoder fills them (defaults
// first, see defaults.go); compile*.go checks them and builds the Config.
// The toml tags are the key names.

type rawFile struct {
	Milter   rawMilter             `toml:"milter"`
	Trace    rawTrace              `toml:"trace"`
	Bypass   rawBypass             `toml:"bypass"`
	Servers  map[string]rawServer  `toml:"servers"`
	Services map[string]rawService `toml:"services"`
	Chains   map[string]rawChain   `toml:"chains"`
	Routes   []rawRoute            `toml:"routes"`
	Skip     []rawSkip             `toml:"skip"`
	Callout  *rawCallout           `toml:"callout"`
}

// milterKeys are the top-level keys of the opes-milter side.
var milterKeys = [...]string{"milter", "trace", "bypass", "servers", "services", "chains", "routes", "skip"}

type rawMilter struct {
	Listen          []string       `toml:"listen"`
	SocketMode      fileMode       `toml:"socket_mode"`
	SocketOwner     string         `toml:"socket_owner"`
	MaxSessions     int            `toml:"max_sessions"`
	MaxTransactions int            `toml:"max_transactions"`
	LogLevel        logLevel       `toml:"log_level"`
	LogFormat       logFormat      `toml:"log_format"`
	MetricsListen   string         `toml:"metrics_listen"`
	Pprof           bool           `toml:"pprof"`
	MaxProcs        int            `toml:"max_procs"`
	SpoolDir        string         `toml:"spool_dir"`
	SpoolMemory     size           `toml:"spool_memory"`
	MaxMessageSize  size           `toml:"max_message_size"`
	Oversize        oversizeAction `toml:"oversize"`
	NonSMTPDaemons  []string       `toml:"non_smtp_daemon_names"`
	QuarantineHdr   string         `toml:"quarantine_header"`
	Timeouts        rawTimeouts    `toml:"timeouts"`
	MTA             rawMTA         `toml:"mta"`

	// What a callout server may ask of the MTA per message.
	MaxHeaderChanges     int  `toml:"max_header_changes"`
	MaxHeaderChangeBytes size `toml:"max_header_change_bytes"`
	MaxAddedRecipients   int  `toml:"max_added_recipients"`
	MaxAdaptedSize       size `toml:"max_adapted_size"` // -1: max_message_size

	// What the MTA may hold.
	MaxConnections         int      `toml:"max_connections"`
	TransactionIdleTimeout duration `toml:"transaction_idle_timeout"`

	// The DNS server that resolves server set names; "" is the system's.
	Resolver string `toml:"resolver"`
}

type rawTimeouts struct {
	Connect          duration `toml:"connect"`
	Mail             duration `toml:"mail"`
	Rcpt             duration `toml:"rcpt"`
	EndOfMessage     duration `toml:"end_of_message"`
	ProgressInterval duration `toml:"progress_interval"`
	// Helo and Data bound nothing and went away; they are decoded only to
	// refuse them with the reason (compile_milter.go).
	Helo duration `toml:"helo"`
	Data duration `toml:"data"`
}

type rawMTA struct {
	CommandTimeout duration `toml:"command_timeout"`
	ContentTimeout duration `toml:"content_timeout"`
}

type rawTrace struct {
	SystemURI  string `toml:"system_uri"`
	PrivacyURI string `toml:"privacy_uri"`
	Via        bool   `toml:"via"`
}

type rawBypass struct {
	Header  bool     `toml:"header"`
	Allowed []string `toml:"allowed"`
}

type rawServer struct {
	Addresses        []string `toml:"addresses"`
	Strategy         Strategy `toml:"strategy"`
	Connections      int      `toml:"connections"`
	ConnectTimeout   duration `toml:"connect_timeout"`
	HandshakeTimeout duration `toml:"handshake_timeout"`
	IdleTimeout      duration `toml:"idle_timeout"`
	FailureLimit     int      `toml:"failure_limit"`
	RevivalDelay     duration `toml:"revival_delay"`
	TLS              *rawTLS  `toml:"tls"`

	ResolveInterval duration `toml:"resolve_interval"`
}

type rawTLS struct {
	Enabled            bool   `toml:"enabled"`
	CAFile             string `toml:"ca_file"`
	CertFile           string `toml:"cert_file"`
	KeyFile            string `toml:"key_file"`
	ServerName         string `toml:"server_name"`
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
}

type rawService struct {
	URI    string            `toml:"uri"`
	Params map[string]string `toml:"params"`
}

type rawChain struct {
	Services  []string   `toml:"services"`
	Server    string     `toml:"server"`
	OnFailure rawFailure `toml:"on_failure"`
}

type rawFailure struct {
	Connect  failureAction `toml:"connect"`
	Timeout  failureAction `toml:"timeout"`
	Protocol failureAction `toml:"protocol"`
	Server   failureAction `toml:"server"`
}

type rawRoute struct {
	Name        string    `toml:"name"`
	Profile     Profile   `toml:"profile"`
	Chain       string    `toml:"chain"`
	Adaptive    []rawPart `toml:"adaptive"`
	Informative []rawPart `toml:"informative"`
	HeaderList  []string  `toml:"header_list"`
	Match       rawMatch  `toml:"match"`
}

type rawMatch struct {
	DaemonName    []string `toml:"daemon_name"`
	ClientNetwork []string `toml:"client_network"`
	Authenticated *bool    `toml:"authenticated"`
	SenderDomain  []string `toml:"sender_domain"`
	RcptDomain    []string `toml:"rcpt_domain"`
	NonSMTP       *bool    `toml:"non_smtp"`
}

// rawSkip is a skip rule: a name and the conditions of a match, side by
// side in one table.
type rawSkip struct {
	Name string `toml:"name"`
	rawMatch
}

type rawCallout struct {
	Listen           []string  `toml:"listen"`
	TLS              *rawTLS   `toml:"tls"`
	MetricsListen    string    `toml:"metrics_listen"`
	Pprof            bool      `toml:"pprof"`
	MaxProcs         int       `toml:"max_procs"`
	LogLevel         logLevel  `toml:"log_level"`
	LogFormat        logFormat `toml:"log_format"`
	MaxConnections   int       `toml:"max_connections"`
	IdleTimeout      duration  `toml:"idle_timeout"`
	HandshakeTimeout duration  `toml:"handshake_timeout"`
	DrainTimeout     duration  `toml:"drain_timeout"`
	// Services are decoded in two steps: the kind first, then the table
	// into the struct of that kind (options.go).
	Services map[string]map[string]any `toml:"services"`
}
