package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/cmd/internal/cli"
	"github.com/opes-milter/opes-milter/mapping"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// tryOptions are try's flags and arguments.
type tryOptions struct {
	config, message            string
	from, client, helo, daemon string
	rcpts                      stringList
	body, local                bool
	stdin                      io.Reader // read for message "-"
}

// tryFlags defines try's flags on fs.
func tryFlags(fs *flag.FlagSet) *tryOptions {
	o := &tryOptions{}
	fs.StringVar(&o.from, "from", "sender@example.org", "envelope sender `address`")
	fs.Var(&o.rcpts, "rcpt", "envelope recipient `address` (repeatable; default recipient@example.com)")
	fs.StringVar(&o.client, "client", "127.0.0.1", "client `IP` address")
	fs.StringVar(&o.helo, "helo", "localhost", "HELO `name`")
	fs.StringVar(&o.daemon, "daemon-name", "", "the MTA's {daemon_name} macro (`name`)")
	fs.BoolVar(&o.body, "body", false, "print the replaced body, not only its size and MIME structure")
	fs.BoolVar(&o.local, "local", false, "run the [callout] services of the same file in process instead of the configured callout servers")
	return o
}

// The exit statuses of try, by verdict (documented in its help text).
const (
	tryAccepted   = 0 // accepted for at least one recipient (maybe adapted)
	tryRejected   = 3 // refused with 5xx: the message, or every recipient
	tryTempFailed = 4 // refused with 4xx (at least one recipient or the message)
	tryDiscarded  = 5 // accepted and silently discarded
)

// tryDoc is try's help text: what it does and its exit statuses.
const tryDoc = `Runs one message through the callout servers as the MTA would: CONNECT, HELO, MAIL,
each RCPT (a refused recipient is dropped; when every recipient is refused the transaction
ends there, as an MTA ends it), then the headers, the body and end of message. It prints
every reply, every header change, and the MIME structure before and after with sizes;
the replaced body itself only with -body. MESSAGE is a file, or - for standard input.

With -local the [callout] services of the same file run in process, so a configuration
can be tried with no daemon running.

Exit status: 0 accepted (for at least one recipient), 3 rejected (5xx: the message or
every recipient), 4 tempfailed (4xx), 5 discarded, 1 the configuration or the message
could not be used, 2 bad command line.`

// cmdTry runs one message through the configured callout servers exactly
// as the MTA path would, prints every reply and milter action and a
// summary, and ends with the exit status of the verdict.
func cmdTry(ctx context.Context, o *tryOptions, stdout, stderr io.Writer) error {
	from, client, helo, daemon, rcpts := o.from, o.client, o.helo, o.daemon, o.rcpts
	if len(rcpts) == 0 {
		rcpts = stringList{"recipient@example.com"}
	}
	var msg []byte
	var err error
	if o.message == "-" {
		msg, err = io.ReadAll(o.stdin)
	} else {
		msg, err = os.ReadFile(o.message)
	}
	if err != nil {
		return err
	}
	header, body, err := splitEML(msg)
	if err != nil {
		return fmt.Errorf("%s: %w", o.message, err)
	}
	cfg, policy, err := loadMilter(o.config)
	if err != nil {
		return err
	}
	if o.local {
		stop, err := serveLocal(cfg, policy)
		if err != nil {
			return err
		}
		defer stop()
	}
	br := bridge.New(policy, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	defer br.Close()
	sess, err := br.NewSession(ctx, br.Requirements().Replies&br.Replies())
	if err != nil {
		return err
	}
	defer sess.Close()
	mac := macros{"{daemon_name}": daemon, "i": "TRY"}
	p := &printer{w: stdout, body: o.body, header: slicesClone(header)}
	verdict := func(r bridge.Reply) error {
		switch r.Kind {
		case bridge.Reject:
			fmt.Fprintln(stdout, "verdict          rejected")
			return cli.ExitError{Code: tryRejected}
		case bridge.TempFail:
			fmt.Fprintln(stdout, "verdict          tempfailed")
			return cli.ExitError{Code: tryTempFailed}
		case bridge.Discard:
			fmt.Fprintln(stdout, "verdict          discarded")
			return cli.ExitError{Code: tryDiscarded}
		}
		return nil
	}
	for _, step := range []struct {
		event string
		reply func() bridge.Reply
	}{
		{"connect", func() bridge.Reply {
			return sess.Connect(ctx, mac, bridge.Client{Hostname: "localhost", Family: "tcp4", Addr: client})
		}},
		{"helo", func() bridge.Reply { return sess.Helo(ctx, mac, helo) }},
		{"mail", func() bridge.Reply { return sess.Mail(ctx, mac, "<"+from+">", nil) }},
	} {
		r := step.reply()
		p.reply(step.event, r)
		if err := verdict(r); err != nil {
			return err
		}
	}
	accepted := 0
	var refusal bridge.Reply
	for _, rc := range rcpts {
		r := sess.Rcpt(ctx, mac, "<"+rc+">", nil)
		p.reply("rcpt <"+rc+">", r)
		switch r.Kind {
		case bridge.Reject:
			if refusal.Kind != bridge.TempFail {
				refusal = r
			}
		case bridge.TempFail:
			refusal = r
		default:
			accepted++
		}
	}
	if accepted == 0 {
		fmt.Fprintln(stdout, "every recipient was refused: the MTA ends the transaction here (no DATA)")
		return verdict(refusal)
	}
	r := sess.Data(ctx, mac)
	p.reply("data", r)
	if err := verdict(r); err != nil {
		return err
	}
	for _, h := range header {
		if r := sess.Header(ctx, mac, h[0], h[1]); r.Kind != bridge.Continue {
			p.reply("header "+h[0], r)
			if err := verdict(r); err != nil {
				return err
			}
		}
	}
	r = sess.EndOfHeaders(ctx, mac)
	p.reply("end of headers", r)
	if err := verdict(r); err != nil {
		return err
	}
	rest := body
	for len(rest) > 0 {
		n := min(len(rest), 65535)
		if r := sess.Body(ctx, mac, bytes.Clone(rest[:n])); r.Kind != bridge.Continue {
			p.reply("body", r)
			if err := verdict(r); err != nil {
				return err
			}
			if r.Kind == bridge.Skip {
				break
			}
		}
		rest = rest[n:]
	}
	r = sess.EndOfMessage(ctx, mac, p)
	p.reply("end of message", r)
	if err := verdict(r); err != nil {
		return err
	}
	after := body
	if p.replaced != nil {
		after = p.replaced
	}
	fmt.Fprintf(stdout, "\nbefore (%s)\n", plural(len(rcpts), "recipient"))
	printStructure(stdout, header, body)
	fmt.Fprintf(stdout, "after (%s accepted%s)\n", plural(accepted, "recipient"), p.recipientChanges())
	printStructure(stdout, p.header, after)
	fmt.Fprintln(stdout, "verdict          accepted")
	return nil
}

// plural is "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func slicesClone(h [][2]string) [][2]string { return append([][2]string(nil), h...) }

// serveLocal serves the [callout] services of cfg on a loopback port in
// process and points every server set of policy at it.
func serveLocal(cfg *mapping.Config, policy *bridge.Policy) (stop func(), err error) {
	d, addr, err := startLocal(cfg, nil, nil)
	if err != nil {
		return nil, err
	}
	pointAt(policy, addr)
	return func() { d.Server.Close() }, nil
}

// splitEML splits a message file into header fields (raw values, folds as
// CRLF) and a CRLF body, as an MTA passes them.
func splitEML(msg []byte) ([][2]string, []byte, error) {
	msg = bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	br := bufio.NewReader(bytes.NewReader(msg))
	var fields [][2]string
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimSuffix(line, "\r\n")
		if line == "" {
			rest, _ := io.ReadAll(br)
			return fields, rest, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) == 0 {
				return nil, nil, errors.New("message starts with a continuation line")
			}
			fields[len(fields)-1][1] += "\r\n" + line
		} else if name, value, ok := strings.Cut(line, ":"); ok {
			fields = append(fields, [2]string{name, value})
		} else {
			return nil, nil, fmt.Errorf("not a header line: %q", line)
		}
		if err != nil {
			return fields, nil, nil
		}
	}
}

// macros is a fixed macro set.
type macros map[string]string

func (m macros) Get(name string) string { return m[name] }

// printer prints replies and acts as the MTA's Modifier; it keeps the
// header and the body as the actions leave them.
type printer struct {
	w        io.Writer
	body     bool        // print a replaced body
	header   [][2]string // the header fields after the actions
	replaced []byte      // the replaced body, nil when unchanged
	added    int         // recipients added
	deleted  int         // recipients deleted
}

func (p *printer) reply(event string, r bridge.Reply) {
	kind := map[bridge.ReplyKind]string{
		bridge.Continue: "continue", bridge.Skip: "skip", bridge.Reject: "reject",
		bridge.TempFail: "tempfail", bridge.Accept: "accept", bridge.Discard: "discard",
	}[r.Kind]
	if r.SMTP.Code != 0 {
		fmt.Fprintf(p.w, "%-16s %s %d %s\n", event, kind, r.SMTP.Code, strings.ReplaceAll(r.SMTP.Text, "\r\n", " / "))
		return
	}
	fmt.Fprintf(p.w, "%-16s %s\n", event, kind)
}

func (p *printer) recipientChanges() string {
	s := ""
	if p.added > 0 {
		s += fmt.Sprintf(", %d added", p.added)
	}
	if p.deleted > 0 {
		s += fmt.Sprintf(", %d deleted", p.deleted)
	}
	return s
}

func (p *printer) AddHeader(name, value string) error {
	fmt.Fprintf(p.w, "  add header       %s:%s\n", name, value)
	p.header = append(p.header, [2]string{name, value})
	return nil
}
func (p *printer) InsertHeader(index int, name, value string) error {
	fmt.Fprintf(p.w, "  insert header    %d %s:%s\n", index, name, value)
	index = max(0, min(index, len(p.header)))
	p.header = append(p.header[:index], append([][2]string{{name, value}}, p.header[index:]...)...)
	return nil
}
func (p *printer) ChangeHeader(index int, name, value string) error {
	if value == "" {
		fmt.Fprintf(p.w, "  delete header    %s[%d]\n", name, index)
	} else {
		fmt.Fprintf(p.w, "  change header    %s[%d]:%s\n", name, index, value)
	}
	n := 0
	for i, h := range p.header {
		if strings.EqualFold(h[0], name) {
			if n++; n == index {
				if value == "" {
					p.header = append(p.header[:i], p.header[i+1:]...)
				} else {
					p.header[i][1] = value
				}
				return nil
			}
		}
	}
	if value != "" { // changing a field that is not there adds it (milter)
		p.header = append(p.header, [2]string{name, value})
	}
	return nil
}
func (p *printer) ReplaceBody(r io.Reader) error {
	body, err := io.ReadAll(r)
	p.replaced = body
	fmt.Fprintf(p.w, "  replace body     %d bytes\n", len(body))
	if !p.body {
		return err
	}
	for _, line := range strings.SplitAfter(string(body), "\n") {
		if line != "" {
			fmt.Fprintf(p.w, "    | %s", strings.ReplaceAll(strings.TrimSuffix(line, "\r\n"), "\r", "\\r")+"\n")
		}
	}
	return err
}
func (p *printer) ChangeFrom(from, args string) error {
	fmt.Fprintf(p.w, "  change from      %s %s\n", from, args)
	return nil
}
func (p *printer) AddRecipient(rcpt, args string) error {
	p.added++
	fmt.Fprintf(p.w, "  add recipient    %s %s\n", rcpt, args)
	return nil
}
func (p *printer) DeleteRecipient(rcpt string) error {
	p.deleted++
	fmt.Fprintf(p.w, "  delete recipient %s\n", rcpt)
	return nil
}
func (p *printer) Quarantine(reason string) error {
	fmt.Fprintf(p.w, "  quarantine       %s\n", reason)
	return nil
}
func (p *printer) Progress() error { return nil }
