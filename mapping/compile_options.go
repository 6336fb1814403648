package mapping

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// optionsBuilder compiles the kind-specific options of one callout
// service, reporting problems under its key.
type optionsBuilder struct {
	*builder
	key string
}

func (o *optionsBuilder) k(name string) string { return joinPath(o.key, name) }

func (o *optionsBuilder) reply(name, s string) ocpsmtp.Reply {
	r, err := parseReply(s)
	if err != nil {
		o.errorf(ErrValue, o.k(name), "%v", err)
	}
	return r
}

func (o *optionsBuilder) addresses(name string, list []string) []string {
	var out []string
	for i, a := range list {
		v, err := checkAddress(a)
		if err != nil {
			o.errorf(ErrValue, indexPath(o.k(name), i), "%v", err)
			continue
		}
		out = append(out, v)
	}
	return out
}

// addressMap checks a table of address (or domain) rewrites.
func (o *optionsBuilder) addressMap(name string, m map[string]string, check func(string) (string, error)) map[string]string {
	out := make(map[string]string, len(m))
	for _, from := range sortedKeys(m) {
		key := joinPath(o.k(name), from)
		f, err := check(from)
		if err != nil {
			o.errorf(ErrValue, key, "%v", err)
			continue
		}
		t, err := check(m[from])
		if err != nil {
			o.errorf(ErrValue, key, "%v", err)
			continue
		}
		out[f] = t
	}
	return out
}

// nothing reports a service that would do nothing, unless one of its
// keys already has an error (then it may be that key's fault).
func (o *optionsBuilder) nothing(what string) {
	if o.errs.hasUnder(o.key) {
		return
	}
	o.errorf(ErrMissing, o.key, "the service does nothing: set %s", what)
}

func (o *optionsBuilder) recipientPolicy(r *rawRecipientPolicy) *RecipientPolicy {
	p := &RecipientPolicy{
		Deny:         o.addresses("deny", r.Deny),
		DenyDomains:  o.domains(o.k("deny_domains"), r.DenyDomains),
		Allow:        o.addresses("allow", r.Allow),
		AllowDomains: o.domains(o.k("allow_domains"), r.AllowDomains),
		Reply:        o.reply("reply", r.Reply),
		Aliases:      o.addressMap("aliases", r.Aliases, checkAddress),
	}
	for i, pat := range r.DenyPatterns {
		re, err := regexp.Compile(pat)
		if err != nil {
			o.errorf(ErrValue, indexPath(o.k("deny_patterns"), i), "bad regular expression: %v", err)
			continue
		}
		p.DenyPatterns = append(p.DenyPatterns, re)
	}
	if len(r.Deny)+len(r.DenyDomains)+len(r.DenyPatterns)+len(r.Aliases) == 0 {
		o.nothing("deny, deny_domains, deny_patterns or aliases")
	}
	return p
}

func (o *optionsBuilder) senderRewrite(r *rawSenderRewrite) *SenderRewrite {
	s := &SenderRewrite{
		Addresses: o.addressMap("addresses", r.Addresses, checkAddress),
		Domains:   o.addressMap("domains", r.Domains, checkPlainDomain),
	}
	if len(r.Addresses)+len(r.Domains) == 0 {
		o.nothing("addresses or domains")
	}
	return s
}

// checkPlainDomain is checkDomain without the subdomain form.
func checkPlainDomain(s string) (string, error) {
	if strings.HasPrefix(s, ".") {
		return "", fmt.Errorf("bad domain %q (a whole domain here, without the leading dot)", s)
	}
	return checkDomain(s)
}

func (o *optionsBuilder) headerTag(r *rawHeaderTag) *HeaderTag {
	h := &HeaderTag{}
	for _, name := range sortedKeys(r.Headers) {
		key := joinPath(o.k("headers"), name)
		if err := checkHeaderName(name); err != nil {
			o.errorf(ErrValue, key, "%v", err)
			continue
		}
		if err := checkHeaderValue(r.Headers[name]); err != nil {
			o.errorf(ErrValue, key, "%v", err)
			continue
		}
		h.Headers = append(h.Headers, Header{Name: name, Value: r.Headers[name]})
	}
	if len(r.Headers) == 0 {
		o.nothing("headers")
	}
	return h
}

func (o *optionsBuilder) subjectTag(r *rawSubjectTag) *SubjectTag {
	if r.Prefix == "" {
		o.errorf(ErrMissing, o.k("prefix"), "required: the text put before the subject")
	} else if err := checkHeaderValue(r.Prefix); err != nil {
		o.errorf(ErrValue, o.k("prefix"), "%v", err)
	}
	o.enum("dkim", r.DKIM, DKIMSkip, DKIMModify)
	return &SubjectTag{Prefix: r.Prefix, MatchSenderOutside: o.domains(o.k("match_sender_outside"), r.MatchSenderOutside), DKIM: r.DKIM}
}

func (o *optionsBuilder) disclaimer(r *rawDisclaimer) *Disclaimer {
	if r.Text == "" && r.HTML == "" {
		o.nothing("text and/or html")
	}
	o.enum("dkim", r.DKIM, DKIMSkip, DKIMModify)
	return &Disclaimer{Text: r.Text, HTML: r.HTML, DKIM: r.DKIM}
}

func (o *optionsBuilder) enum(name, v string, names ...string) {
	if _, err := decodeEnum(v, names); err != nil {
		o.errorf(ErrValue, o.k(name), "%v", err)
	}
}

func (o *optionsBuilder) attachmentFilter(r *rawAttachmentFilter) *AttachmentFilter {
	a := &AttachmentFilter{
		MaxSize:     int64(r.MaxSize),
		Action:      r.Action,
		Replacement: r.Replacement,
		Reply:       o.reply("reply", r.Reply),
		Signed:      r.Signed,
		Unparsable:  r.Unparsable,
	}
	for i, e := range r.Extensions {
		e = strings.ToLower(e)
		if len(e) < 2 || e[0] != '.' || strings.ContainsAny(e[1:], "./\\ \t") {
			o.errorf(ErrValue, indexPath(o.k("extensions"), i), `bad extension %q (write it with the dot, like ".exe")`, r.Extensions[i])
			continue
		}
		a.Extensions = append(a.Extensions, e)
	}
	for i, t := range r.ContentTypes {
		t = strings.ToLower(t)
		typ, sub, ok := strings.Cut(t, "/")
		if !ok || !isToken(typ) || !(sub == "*" || isToken(sub)) {
			o.errorf(ErrValue, indexPath(o.k("content_types"), i), `bad content type %q (want type/subtype or type/*)`, r.ContentTypes[i])
			continue
		}
		a.ContentTypes = append(a.ContentTypes, t)
	}
	o.enum("action", r.Action, "remove", "replace", "reject")
	o.enum("signed", r.Signed, "pass", "reject")
	o.enum("unparsable", r.Unparsable, "reject", "quarantine", "fail")
	if err := checkHeaderValue(r.Replacement); err != nil && r.Action == "replace" {
		o.errorf(ErrValue, o.k("replacement"), "%v", err)
	}
	if len(r.Extensions)+len(r.ContentTypes) == 0 && r.MaxSize == 0 {
		o.nothing("extensions, content_types or max_size")
	}
	return a
}

// isToken matches an RFC 2045 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// commandActions are the outcomes a command's exit status maps to.
func commandActions() []string { return []string{"pass", "headers", "replace", "reject", "tempfail"} }

func (o *optionsBuilder) command(r *rawCommand) *Command {
	c := &Command{
		Argv:      r.Argv,
		Timeout:   o.positive(o.k("timeout"), r.Timeout),
		ExitCodes: make(map[int]string, len(r.ExitCodes)),
		Default:   r.Default,
		Reply:     o.reply("reply", r.Reply),
		MaxOutput: int64(r.MaxOutput),
	}
	if len(r.Argv) == 0 || r.Argv[0] == "" {
		o.errorf(ErrMissing, o.k("argv"), `required: the program and its arguments, like ["spamc", "-E"]`)
	} else if err := executable(r.Argv[0]); err != nil {
		o.errorf(ErrValue, o.k("argv"), "%s: no such executable program (%v)", r.Argv[0], err)
	}
	for _, code := range sortedKeys(r.ExitCodes) {
		key := joinPath(o.k("exit_codes"), code)
		n, err := strconv.Atoi(code)
		if err != nil || n < 0 || n > 255 {
			o.errorf(ErrValue, key, "%q is not an exit status (0 to 255)", code)
			continue
		}
		if _, err := decodeEnum(r.ExitCodes[code], commandActions()); err != nil {
			o.errorf(ErrValue, key, "%v", err)
			continue
		}
		c.ExitCodes[n] = r.ExitCodes[code]
	}
	o.enum("default", r.Default, commandActions()...)
	if r.MaxOutput == 0 {
		o.errorf(ErrValue, o.k("max_output"), "must be larger than 0")
	}
	return c
}

func (o *optionsBuilder) sizeLimit(r *rawSizeLimit) *SizeLimit {
	if r.Max == 0 {
		o.errorf(ErrMissing, o.k("max"), `required: the largest message size, like "10MiB"`)
	}
	return &SizeLimit{Max: int64(r.Max), Reply: o.reply("reply", r.Reply)}
}

// executable reports why the program of a command service cannot run:
// it is looked up as running it does (a name without a slash is searched
// in PATH), and must have an execute bit (root may run any file that has
// one, so access(2) alone would let a plain file pass).
func executable(name string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		if e, ok := err.(*exec.Error); ok {
			return e.Err // without the program name, which the message has
		}
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}
