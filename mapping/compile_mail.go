package mapping

import (
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// scanner compiles the keys shared by the services that talk to a
// scanner.
func (o *optionsBuilder) scanner(r *rawScanner) Backend {
	if _, _, err := parseBackendAddress(r.Address); err != nil {
		o.errorf(ErrValue, o.k("address"), "%v", err)
	}
	o.atLeast(o.k("max_connections"), r.MaxConnections, 1)
	if r.MaxSize == 0 {
		o.errorf(ErrValue, o.k("max_size"), "must be larger than 0")
	}
	o.enum("dkim", r.DKIM, DKIMSkip, DKIMModify)
	return Backend{Address: r.Address, Timeout: o.positive(o.k("timeout"), r.Timeout), MaxConns: r.MaxConnections}
}

// parseBackendAddress checks the address forms callout.Backend accepts
// (mapping cannot import callout).
func parseBackendAddress(s string) (string, string, error) {
	switch {
	case strings.HasPrefix(s, "unix:") || strings.HasPrefix(s, "/"):
		p := strings.TrimPrefix(s, "unix:")
		if p == "" {
			return "", "", errorString("empty socket path")
		}
		return "unix", p, nil
	case strings.HasPrefix(s, "inet:") && strings.Contains(s, "@"):
		port, host, _ := strings.Cut(strings.TrimPrefix(s, "inet:"), "@")
		s = net.JoinHostPort(host, port)
	}
	s = strings.TrimPrefix(s, "tcp:")
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return "", "", errorString(`want "host:port", "unix:/path" or "inet:port@host", not "` + s + `"`)
	}
	return "tcp", s, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

func (o *optionsBuilder) headerPrefix(name, p string, required bool) {
	if p == "" {
		if required {
			o.errorf(ErrMissing, o.k(name), `required, like "X-Spam-"`)
		}
		return
	}
	if err := checkHeaderName(strings.TrimSuffix(p, "-")); err != nil {
		o.errorf(ErrValue, o.k(name), "%v", err)
	}
}

func (o *optionsBuilder) spamd(r *rawSpamd) *Spamd {
	s := &Spamd{
		Backend: o.scanner(&r.rawScanner), MaxSize: int64(r.MaxSize), User: r.User,
		Request: strings.ToUpper(r.Request), Compress: r.Compress, HeaderPrefix: r.HeaderPrefix,
		Tag: float64(r.Tag), Tag2: float64(r.Tag2), Kill: float64(r.Kill),
		SubjectPrefix: r.SubjectPrefix, KillAction: r.KillAction, Reply: o.reply("reply", r.Reply),
		DKIM: r.DKIM,
	}
	o.enum("request", s.Request, "SYMBOLS", "REPORT", "HEADERS")
	o.headerPrefix("header_prefix", r.HeaderPrefix, true)
	if r.Tag2 < r.Tag {
		o.errorf(ErrConflict, o.k("tag2"), "%v is below tag (%v)", float64(r.Tag2), float64(r.Tag))
	}
	if r.Kill < r.Tag2 {
		o.errorf(ErrConflict, o.k("kill"), "%v is below tag2 (%v)", float64(r.Kill), float64(r.Tag2))
	}
	for i, a := range r.Tag2Action {
		if _, err := decodeEnum(a, []string{"subject", "quarantine"}); err != nil {
			o.errorf(ErrValue, indexPath(o.k("tag2_action"), i), "%v", err)
			continue
		}
		s.Tag2Actions = append(s.Tag2Actions, a)
	}
	if slices.Contains(r.Tag2Action, "subject") {
		if err := checkHeaderValue(r.SubjectPrefix); err != nil || r.SubjectPrefix == "" {
			o.errorf(ErrValue, o.k("subject_prefix"), "needs a one-line text for tag2_action \"subject\"")
		}
	}
	o.enum("kill_action", r.KillAction, "reject", "quarantine")
	if r.User != "" && strings.ContainsAny(r.User, "\r\n") {
		o.errorf(ErrValue, o.k("user"), "a line break")
	}
	return s
}

func (o *optionsBuilder) rspamd(r *rawRspamd) *Rspamd {
	s := &Rspamd{
		Backend: o.scanner(&r.rawScanner), MaxSize: int64(r.MaxSize), Password: r.Password,
		SettingsID: r.SettingsID, User: r.User, Greylist: r.Greylist, SpamHeader: r.SpamHeader,
		SubjectPrefix: r.SubjectPrefix, HeaderPrefix: r.HeaderPrefix,
		RejectReply: o.reply("reject_reply", r.RejectReply), TempfailReply: o.reply("tempfail_reply", r.TempfailReply),
		MaxResponse: int64(r.MaxResponse), DKIM: r.DKIM,
	}
	o.enum("greylist", r.Greylist, "accept", "tempfail")
	if err := checkHeaderName(r.SpamHeader); err != nil {
		o.errorf(ErrValue, o.k("spam_header"), "%v", err)
	}
	o.headerPrefix("header_prefix", r.HeaderPrefix, false)
	if err := checkHeaderValue(r.SubjectPrefix); err != nil || r.SubjectPrefix == "" {
		o.errorf(ErrValue, o.k("subject_prefix"), `needs a one-line text (the Subject prefix of "rewrite subject")`)
	}
	for _, kv := range [][2]string{{"password", r.Password}, {"settings_id", r.SettingsID}, {"user", r.User}} {
		if strings.ContainsAny(kv[1], "\r\n") {
			o.errorf(ErrValue, o.k(kv[0]), "a line break")
		}
	}
	if s.RejectReply.Code != 0 && s.RejectReply.Code/100 != 5 {
		o.errorf(ErrValue, o.k("reject_reply"), "must be a 5xx reply")
	}
	if s.TempfailReply.Code != 0 && s.TempfailReply.Code/100 != 4 {
		o.errorf(ErrValue, o.k("tempfail_reply"), "must be a 4xx reply")
	}
	if r.MaxResponse < 1024 {
		o.errorf(ErrValue, o.k("max_response"), "must be at least 1024 bytes")
	}
	return s
}

func (o *optionsBuilder) authVerify(r *rawAuthVerify) *AuthVerify {
	a := &AuthVerify{
		AuthservID: r.AuthservID, Resolver: r.Resolver, Timeout: o.positive(o.k("timeout"), r.Timeout),
		MaxSignatures: r.MaxSignatures, DKIM: r.DKIM, SPF: r.SPF, DMARC: r.DMARC,
		DMARCReject: r.DMARCReject, Reply: o.reply("reply", r.Reply),
	}
	if r.AuthservID == "" {
		o.errorf(ErrMissing, o.k("authserv_id"), `required: this host's name in Authentication-Results, like "mx.example.com"`)
	} else if err := checkHost(r.AuthservID); err != nil {
		o.errorf(ErrValue, o.k("authserv_id"), "%v", err)
	}
	if r.Resolver != "" {
		if _, err := parseHostPort(r.Resolver); err != nil {
			o.errorf(ErrValue, o.k("resolver"), "%q: %v", r.Resolver, err)
		}
	}
	o.atLeast(o.k("max_signatures"), r.MaxSignatures, 1)
	o.enum("dmarc_reject", r.DMARCReject, "none", "reject")
	if r.DMARCReject == "reject" && !(r.DMARC && r.SPF && r.DKIM) {
		o.errorf(ErrConflict, o.k("dmarc_reject"), "needs dkim, spf and dmarc on")
	}
	if !r.DKIM && !r.SPF && !r.DMARC {
		o.nothing("dkim, spf or dmarc to true")
	}
	return a
}

func (o *optionsBuilder) dkimSign(r *rawDKIMSign) *DKIMSign {
	d := &DKIMSign{Expire: time.Duration(r.Expire)}
	for _, dom := range sortedKeys(r.Keys) {
		key := joinPath(o.k("keys"), dom)
		k := r.Keys[dom]
		v, err := checkPlainDomain(dom)
		if err != nil {
			o.errorf(ErrValue, key, "%v", err)
			continue
		}
		if k.Selector == "" || !isSelector(k.Selector) {
			o.errorf(ErrValue, joinPath(key, "selector"), "required: the DNS label of the key (selector._domainkey.%s)", v)
		}
		if k.KeyFile == "" {
			o.errorf(ErrMissing, joinPath(key, "key_file"), "required: the PEM file of the private key")
		} else if _, err := os.Stat(k.KeyFile); err != nil {
			o.errorf(ErrValue, joinPath(key, "key_file"), "%v", err)
		}
		d.Keys = append(d.Keys, DKIMKey{Domain: v, Selector: k.Selector, KeyFile: k.KeyFile})
	}
	if len(r.Keys) == 0 {
		o.nothing("keys (a signing table: domain = { selector, key_file })")
	}
	hasFrom := false
	for i, h := range r.Headers {
		if err := checkHeaderName(h); err != nil {
			o.errorf(ErrValue, indexPath(o.k("headers"), i), "%v", err)
			continue
		}
		hasFrom = hasFrom || strings.EqualFold(h, "From")
		d.Headers = append(d.Headers, h)
	}
	if !hasFrom {
		o.errorf(ErrValue, o.k("headers"), "must include From (RFC 6376 §5.4)")
	}
	return d
}

func isSelector(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// changesMessage reports whether kind k may change the message (its
// header or body); recipient-policy, sender-rewrite and size-limit change
// the envelope or refuse, dkim-sign only adds its signature.
func changesMessage(k Kind) bool {
	switch k {
	case KindRecipientPolicy, KindSenderRewrite, KindSizeLimit, KindDKIMSign:
		return false
	}
	return true
}

// checkMailChains checks the order of auth-verify and dkim-sign in the
// chains, when the file configures both daemons: auth-verify must come
// before every service that may change the message or the envelope
// sender (it verifies what arrived, SPF included, and removes forged
// results), dkim-sign after every service that may change the message
// (it signs what leaves).
func (b *builder) checkMailChains() {
	if b.cfg.Callout == nil {
		return
	}
	for _, c := range b.cfg.Chains {
		key := joinPath("chains", c.Name)
		changed, signer := "", -1
		for i, s := range c.Services {
			cs, ok := b.cfg.Callout.Service(s.URI)
			if !ok {
				continue
			}
			skey := indexPath(joinPath(key, "services"), i)
			switch {
			case cs.Kind == KindAuthVerify && changed != "":
				b.errorf(ErrConflict, skey, "%q (auth-verify) must run before %q, which may change the message or its sender: it verifies the message as it arrived", s.Name, changed)
			case signer >= 0 && changesMessage(cs.Kind):
				b.errorf(ErrConflict, skey, "%q (%s) follows %q (dkim-sign) and may change the message after it was signed: dkim-sign must run last", s.Name, cs.Kind, c.Services[signer].Name)
			}
			if cs.Kind == KindDKIMSign {
				signer = i
			}
			// auth-verify reads the message and the envelope sender (SPF).
			if (changesMessage(cs.Kind) || cs.Kind == KindSenderRewrite) && changed == "" {
				changed = s.Name
			}
		}
	}
}
