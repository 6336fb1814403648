package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/mimetext"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// maxRspamdHeader bounds the HTTP header of rspamd's answer (net/http's
// default is 10 MiB).
const maxRspamdHeader = 64 << 10

// Rspamd scans the message with rspamd over its HTTP protocol (kind
// rspamd): POST /checkv2 with the transaction's facts in the request
// header (IP, Helo, From, Rcpt, Queue-Id, User, Settings-ID, Password),
// and applies the action as rspamd's own milter proxy does:
//
//   - reject: refused with 5xx and rspamd's message (smtp_message), or
//     quarantined/discarded when the milter block says so;
//   - soft reject: refused with 4xx;
//   - rewrite subject: the Subject rspamd computed (or the configured
//     prefix) replaces the field;
//   - add header: the spam header (X-Spam: Yes) replaces the old one;
//   - greylist: accepted (configurable to tempfail: without greylisting
//     state a 4xx would defer such mail for ever);
//   - no action: accepted.
//
// rspamd's milter block is applied: remove_headers first, then
// add_headers. A field with order 0 or 1 goes to the top of the header
// (a trace field, like Authentication-Results, which rspamd inserts at 1,
// below the MTA's Received line); order -1 appends; any other order
// cannot be kept (the field is appended) and is logged.
// At most max_connections requests run at once; rspamd closes the
// connection after each answer, and a connection a server keeps open (an
// HTTP server in front of rspamd) is reused (rspamd_http.go).
type Rspamd struct {
	o       *mapping.Rspamd
	backend *callout.Backend
	subject *SubjectTag
	readers sync.Pool // *bufio.Reader of 4 KiB for the answers
}

// NewRspamd returns the service for o.
func NewRspamd(o *mapping.Rspamd) (*Rspamd, error) {
	maxc := o.Backend.MaxConns
	if maxc <= 0 {
		maxc = callout.DefaultBackendConns
	}
	b, err := callout.NewBackend(callout.BackendOptions{
		Name: "rspamd", Address: o.Backend.Address, Timeout: o.Backend.Timeout, MaxConns: maxc, MaxIdle: maxc,
	})
	if err != nil {
		return nil, err
	}
	return &Rspamd{o: o, backend: b, subject: NewSubjectTag(&mapping.SubjectTag{Prefix: o.SubjectPrefix})}, nil
}

// Close closes the idle connections to rspamd; the server calls it when a
// reload replaced the service and its last transaction ended.
func (r *Rspamd) Close() error {
	return r.backend.Close()
}

// Needs implements Service: RAWDATA is adapted; the connection facts and
// the envelope are read for rspamd.
func (r *Rspamd) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA},
		Read: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL, ocpsmtp.PartRCPT}}
}

// CheckHealth implements callout.HealthReporter with rspamd's /ping.
func (r *Rspamd) CheckHealth(ctx context.Context) []callout.BackendHealth {
	ctx, cancel := context.WithTimeout(ctx, r.backend.Timeout())
	defer cancel()
	r.do(ctx, http.MethodGet, "/ping", nil, nil, 1024, func(ans rspamdAnswer) error {
		if ans.code != http.StatusOK {
			return fmt.Errorf("/ping: %s", ans.status)
		}
		return nil
	})
	return []callout.BackendHealth{r.backend.Health()}
}

// rspamdResult is the part of /checkv2's answer the service uses.
type rspamdResult struct {
	Action        string             `json:"action"`
	Score         float64            `json:"score"`
	RequiredScore float64            `json:"required_score"`
	Subject       string             `json:"subject"`
	Messages      rspamdMessages     `json:"messages"`
	Milter        *rspamdMilterBlock `json:"milter"`
	IsSkipped     bool               `json:"is_skipped"`
}

// rspamdMessages are the messages of a result; the symbols are not
// decoded (the largest part of the answer, and not needed).
type rspamdMessages struct {
	SMTPMessage string `json:"smtp_message"`
}

// rspamdMilterBlock is the milter block of a result
// (rspamd_milter_send_task_results in rspamd's src/libserver/milter.c).
type rspamdMilterBlock struct {
	AddHeaders    map[string]json.RawMessage `json:"add_headers"`
	RemoveHeaders map[string]int             `json:"remove_headers"`
	Reject        string                     `json:"reject"`
	NoAction      bool                       `json:"no_action"`
}

type rspamdHeader struct {
	Value string `json:"value"`
	Order *int   `json:"order"`
}

// headers returns the fields of add_headers, by name, each value either a
// string, {value, order} or a list of those.
func (m *rspamdMilterBlock) headers() ([]rspamdAdd, error) {
	var out []rspamdAdd
	names := make([]string, 0, len(m.AddHeaders))
	for n := range m.AddHeaders {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := m.AddHeaders[name]
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, rspamdAdd{name: name, value: s})
			continue
		}
		var one rspamdHeader
		if json.Unmarshal(raw, &one) == nil {
			out = append(out, rspamdAdd{name: name, value: one.Value, order: one.Order})
			continue
		}
		var list []rspamdHeader
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("milter.add_headers.%s: %v", name, err)
		}
		for _, h := range list {
			out = append(out, rspamdAdd{name: name, value: h.Value, order: h.Order})
		}
	}
	return out, nil
}

type rspamdAdd struct {
	name, value string
	order       *int
}

// AdaptMessage implements MessageAdapter.
func (r *Rspamd) AdaptMessage(ctx context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	root, err := msg.Root()
	if err != nil {
		return callout.Decision{}, err
	}
	if msg.Size() > r.o.MaxSize {
		out, _, err := withoutPrefixed(msg, root, r.o.HeaderPrefix)
		if err != nil {
			return callout.Decision{}, err
		}
		return notScanned(tx, "rspamd", "X-Rspamd-Scanned", msg, out, r.o.MaxSize), nil
	}
	res, err := r.check(ctx, tx, msg)
	if err != nil {
		return callout.Decision{}, err
	}
	tx.Log().Debug("rspamd: scanned", "action", res.Action, "score", res.Score) // the reason below is in the transaction's line
	action := res.Action
	var mb rspamdMilterBlock
	if res.Milter != nil {
		mb = *res.Milter
	}
	d := callout.Keep().Because(fmt.Sprintf("rspamd: %s, score %.2f", action, res.Score))
	if mb.NoAction {
		// rspamd's proxy applies the milter block, adds the action it
		// did not take and accepts.
		d = d.WithHeader("X-Rspamd-Action", action)
		action = "no action"
	}
	switch action {
	case "reject":
		switch mb.Reject {
		case "discard":
			return d.WithAdvice(ocpsmtp.AdviceDiscard), nil
		case "quarantine":
			d = d.WithAdvice(ocpsmtp.AdviceQuarantine)
		default:
			return callout.RefuseWith(r.reply(r.o.RejectReply, res)).Because(d.Reason), nil
		}
	case "soft reject":
		return callout.RefuseWith(r.reply(r.o.TempfailReply, res)).Because(d.Reason), nil
	case "greylist":
		if r.o.Greylist == "tempfail" {
			return callout.RefuseWith(r.reply(r.o.TempfailReply, res)).Because(d.Reason), nil
		}
	case "quarantine":
		d = d.WithAdvice(ocpsmtp.AdviceQuarantine)
	case "discard":
		return d.WithAdvice(ocpsmtp.AdviceDiscard), nil
	case "no action", "add header", "rewrite subject":
	default:
		return callout.Decision{}, &callout.BackendError{Backend: "rspamd", Err: fmt.Errorf("unknown action %q", action)}
	}

	// Header changes: the configured prefix and remove_headers first,
	// then what the action and add_headers add.
	var edits []callout.Edit
	counts := map[string]int{}
	for _, f := range root.Fields {
		k := strings.ToLower(f.Name)
		counts[k]++
		n, listed := lookupFold(mb.RemoveHeaders, f.Name)
		switch {
		case hasPrefixFold(f.Name, r.o.HeaderPrefix),
			action == "add header" && strings.EqualFold(f.Name, r.o.SpamHeader),
			listed && (n == 0 || n == counts[k] || n < 0 && countFold(root, f.Name)+n+1 == counts[k]):
			edits = append(edits, callout.Edit{Offset: f.Offset, End: f.End})
		}
	}
	if action == "add header" {
		d = d.WithHeader(r.o.SpamHeader, "Yes")
	}
	adds, err := mb.headers()
	if err != nil {
		return callout.Decision{}, &callout.BackendError{Backend: "rspamd", Err: err}
	}
	for _, h := range adds {
		f := callout.Field{Name: h.name, Value: h.value}
		if h.order != nil && (*h.order == 0 || *h.order == 1) {
			// rspamd's milter inserts at 0 or just below the MTA's
			// Received line (1): both are the top of the header.
			f.Top = true
		} else if h.order != nil && *h.order >= 0 {
			tx.Log().Debug("rspamd: header order not kept (added at the end)", "field", h.name, "order", *h.order)
		}
		if err := f.Validate(); err != nil {
			tx.Log().Warn("rspamd: unusable header field dropped", "field", h.name, "err", err)
			continue
		}
		d.Headers = append(d.Headers, f)
	}
	out := msg
	if len(edits) > 0 {
		if out, err = msg.Splice(edits...); err != nil {
			return callout.Decision{}, err
		}
	}
	if action == "rewrite subject" {
		m, err := r.rewriteSubject(tx, out, res.Subject)
		if err != nil {
			return callout.Decision{}, err
		}
		if m != out && out != msg {
			out.Close()
		}
		out = m
	}
	if out != msg {
		d.Action, d.Message = callout.ActionReplace, out
	}
	return d, nil
}

func lookupFold(m map[string]int, name string) (int, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return 0, false
}

func countFold(s *callout.Section, name string) int {
	n := 0
	for _, f := range s.Fields {
		if strings.EqualFold(f.Name, name) {
			n++
		}
	}
	return n
}

// rewriteSubject replaces the Subject with rspamd's (or prefixes it),
// unless the message is signed and the service leaves signed mail alone.
func (r *Rspamd) rewriteSubject(tx *callout.Tx, msg *callout.Message, subject string) (*callout.Message, error) {
	root, err := msg.Root()
	if err != nil {
		return nil, err
	}
	if skipSigned(tx, root, r.o.DKIM, "rspamd rewrite subject") {
		return msg, nil
	}
	if subject == "" || !utf8.ValidString(subject) || strings.ContainsAny(subject, "\r\n\x00") {
		m, _, err := r.subject.tag(msg, root)
		return m, err
	}
	if !mimetext.IsASCII([]byte(subject)) {
		subject = mime.QEncoding.Encode("utf-8", subject)
	}
	return setField(msg, root, "Subject", []byte("Subject: "+subject+"\r\n"))
}

// reply returns the configured reply with rspamd's message, when it sent
// a usable one, as the text after the enhanced status code (if the
// configured reply has one).
func (r *Rspamd) reply(base callout.Reply, res rspamdResult) callout.Reply {
	m := res.Messages.SMTPMessage
	if m == "" {
		return base
	}
	m = strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, m)
	text := truncate(m, 400)
	if enh := base.Enhanced(); enh != "" {
		text = enh + " " + text
	}
	if out := (callout.Reply{Code: base.Code, Text: text}); out.Validate() == nil {
		return out
	}
	return base
}

// check posts the message to /checkv2.
func (r *Rspamd) check(ctx context.Context, tx *callout.Tx, msg *callout.Message) (rspamdResult, error) {
	ctx, cancel := context.WithTimeout(ctx, r.backend.Timeout())
	defer cancel()
	h := make([]rspamdField, 0, 8+len(tx.Recipients))
	set := func(k, v string) {
		if v != "" && validFieldValue(v) {
			h = append(h, rspamdField{k, v})
		}
	}
	set("IP", tx.Client.IP)
	set("Helo", tx.Client.Helo)
	if tx.Sender.Addr != "" || len(tx.Recipients) > 0 {
		set("From", "<"+tx.Sender.Addr+">")
	}
	for _, rc := range tx.Recipients {
		set("Rcpt", "<"+rc.Addr+">")
	}
	set("Queue-Id", tx.Opt(ocpsmtp.OptQueueID))
	if u := tx.AuthUser(); u != "" {
		set("User", u)
	} else {
		set("User", r.o.User)
	}
	set("Settings-ID", r.o.SettingsID)
	set("Password", r.o.Password)
	set("Hostname", tx.Opt(ocpsmtp.OptClientName))
	var res rspamdResult
	_, err := r.do(ctx, http.MethodPost, "/checkv2", h, msg, r.o.MaxResponse, func(ans rspamdAnswer) error {
		if ans.code != http.StatusOK {
			return fmt.Errorf("/checkv2: %s: %s", ans.status, truncate(string(ans.body), 200))
		}
		// Most of the answer is the symbols, which the service does not
		// use: only the members it decodes go to encoding/json.
		body := ans.body
		if m, ok := rspamdMembers(body); ok {
			body = m
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return fmt.Errorf("/checkv2 answer: %w", err)
		}
		if res.Action == "" {
			return errors.New("/checkv2 answer without an action")
		}
		return nil
	})
	if err != nil {
		return rspamdResult{}, err
	}
	return res, nil
}
