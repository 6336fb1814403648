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
}

// tryFlags defines try's flags on fs.
func tryFlags(fs *flag.FlagSet) *tryOptions {
	o := &tryOptions{}
	fs.StringVar(&o.from, "from", "sender@example.org", "envelope sender `address`")
	fs.Var(&o.rcpts, "rcpt", "envelope recipient `address` (repeatable; default recipient@example.com)")
	fs.StringVar(&o.client, "client", "127.0.0.1", "client `IP` address")
	fs.StringVar(&o.helo, "helo", "localhost", "HELO `name`")
	fs.StringVar(&o.daemon, "daemon-name", "", "the MTA's {daemon_name} macro (`name`)")
	return o
}

// cmdTry runs one message through the configured callout servers exactly as
// the MTA path would, and prints every reply and milter action.
func cmdTry(ctx context.Context, o *tryOptions, stdout, stderr io.Writer) error {
	from, client, helo, daemon, rcpts := o.from, o.client, o.helo, o.daemon, o.rcpts
	if len(rcpts) == 0 {
		rcpts = stringList{"recipient@example.com"}
	}
	msg, err := os.ReadFile(o.message)
	if err != nil {
		return err
	}
	_, policy, err := loadMilter(o.config)
	if err != nil {
		return err
	}
	br := bridge.New(policy, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	defer br.Close()
	sess, err := br.NewSession(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()
	mac := macros{"{daemon_name}": daemon, "i": "TRY"}
	p := &printer{w: stdout}
	p.reply("connect", sess.Connect(ctx, mac, bridge.Client{Hostname: "localhost", Family: "tcp4", Addr: client}))
	p.reply("helo", sess.Helo(ctx, mac, helo))
	p.reply("mail", sess.Mail(ctx, mac, "<"+from+">", nil))
	for _, r := range rcpts {
		p.reply("rcpt <"+r+">", sess.Rcpt(ctx, mac, "<"+r+">", nil))
	}
	p.reply("data", sess.Data(ctx, mac))
	header, body, err := splitEML(msg)
	if err != nil {
		return err
	}
	for _, h := range header {
		if rep := sess.Header(ctx, mac, h[0], h[1]); rep.Kind != bridge.Continue {
			p.reply("header "+h[0], rep)
		}
	}
	p.reply("end of headers", sess.EndOfHeaders(ctx, mac))
	for len(body) > 0 {
		n := min(len(body), 65535)
		if rep := sess.Body(ctx, mac, bytes.Clone(body[:n])); rep.Kind != bridge.Continue {
			p.reply("body", rep)
			if rep.Kind == bridge.Skip {
				break
			}
		}
		body = body[n:]
	}
	p.reply("end of message", sess.EndOfMessage(ctx, mac, p))
	return nil
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

// printer prints replies and acts as the MTA's Modifier.
type printer struct{ w io.Writer }

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

func (p *printer) AddHeader(name, value string) error {
	fmt.Fprintf(p.w, "  add header       %s:%s\n", name, value)
	return nil
}
func (p *printer) InsertHeader(index int, name, value string) error {
	fmt.Fprintf(p.w, "  insert header    %d %s:%s\n", index, name, value)
	return nil
}
func (p *printer) ChangeHeader(index int, name, value string) error {
	if value == "" {
		fmt.Fprintf(p.w, "  delete header    %s[%d]\n", name, index)
		return nil
	}
	fmt.Fprintf(p.w, "  change header    %s[%d]:%s\n", name, index, value)
	return nil
}
func (p *printer) ReplaceBody(r io.Reader) error {
	body, err := io.ReadAll(r)
	fmt.Fprintf(p.w, "  replace body     %d bytes\n", len(body))
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
	fmt.Fprintf(p.w, "  add recipient    %s %s\n", rcpt, args)
	return nil
}
func (p *printer) DeleteRecipient(rcpt string) error {
	fmt.Fprintf(p.w, "  delete recipient %s\n", rcpt)
	return nil
}
func (p *printer) Quarantine(reason string) error {
	fmt.Fprintf(p.w, "  quarantine       %s\n", reason)
	return nil
}
func (p *printer) Progress() error { return nil }
