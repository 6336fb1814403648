package builtin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Command outcomes, the values of mapping.Command's ExitCodes and Default.
const (
	// CommandPass keeps the message.
	CommandPass = "pass"
	// CommandHeaders keeps the message and adds the header fields the
	// program's output has and the message has not (what spamc adds).
	CommandHeaders = "headers"
	// CommandReplace replaces the message with the program's output.
	CommandReplace = "replace"
	// CommandReject refuses the message with the configured reply.
	CommandReject = "reject"
	// CommandTempFail refuses the message with
	// mapping.DefaultCommandTempFailReply.
	CommandTempFail = "tempfail"
)

// Command pipes the message to an external program and maps its exit
// status (and output) to a decision (kind command), so that an existing
// scanner plugs in: "spamc -x -E" exits 1 for spam, "clamdscan -" 1 for a
// virus. It fails closed: when the program cannot start, runs past the
// timeout, dies by a signal, writes more than the output limit, or exits
// with a status the configuration does not map and Default is empty, the
// decision is a temporary failure, never a pass.
//
// The program runs without a shell, in its own process group (killed
// whole on timeout), with the message on standard input and these
// environment variables besides PATH: OPES_CLIENT_IP, OPES_HELO,
// OPES_SENDER, OPES_RECIPIENTS (space-separated), OPES_AUTH_USER,
// OPES_QUEUE_ID and OPES_SERVICE. In a reject reply, "{output}" expands
// to the first line of the program's output.
type Command struct {
	opts      *mapping.Command
	timeout   time.Duration
	maxOutput int64
	reply     callout.Reply
	tempFail  callout.Reply
}

// NewCommand returns the service for opts.
func NewCommand(opts *mapping.Command) (*Command, error) {
	if len(opts.Argv) == 0 || opts.Argv[0] == "" {
		return nil, errors.New("callout: command: empty argv")
	}
	for code, v := range opts.ExitCodes {
		if !validCommandAction(v) {
			return nil, fmt.Errorf("callout: command: exit code %d: unknown action %q", code, v)
		}
	}
	if opts.Default != "" && !validCommandAction(opts.Default) {
		return nil, fmt.Errorf("callout: command: unknown default action %q", opts.Default)
	}
	// What opts leaves zero takes mapping's default.
	def := mapping.DefaultOptions(mapping.KindCommand).(*mapping.Command)
	c := &Command{opts: opts, timeout: opts.Timeout, maxOutput: opts.MaxOutput, reply: opts.Reply}
	if c.timeout <= 0 {
		c.timeout = def.Timeout
	}
	if c.maxOutput <= 0 {
		c.maxOutput = def.MaxOutput
	}
	if c.reply.IsZero() {
		c.reply = def.Reply
	}
	if err := c.reply.Validate(); err != nil {
		return nil, err
	}
	tf, err := ocpsmtp.ParseReply(mapping.DefaultCommandTempFailReply)
	if err != nil {
		return nil, err
	}
	c.tempFail = tf
	return c, nil
}

func validCommandAction(s string) bool {
	switch s {
	case CommandPass, CommandHeaders, CommandReplace, CommandReject, CommandTempFail:
		return true
	}
	return false
}

// Needs implements Service: RAWDATA is adapted; the connection facts and
// the envelope are read for the environment.
func (c *Command) Needs() callout.Needs {
	return callout.Needs{
		Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA},
		Read:  []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL, ocpsmtp.PartRCPT},
	}
}

// AdaptMessage implements MessageAdapter.
func (c *Command) AdaptMessage(ctx context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	res := c.run(ctx, tx, msg)
	defer res.out.Discard()
	if res.err != nil {
		if ctx.Err() != nil && !errors.Is(res.err, context.DeadlineExceeded) {
			// The transaction was cancelled; nobody waits for a decision.
			return callout.Decision{}, ctx.Err()
		}
		tx.Log().Warn("command failed, failing closed", "argv0", c.opts.Argv[0], "err", res.err, "stderr", res.stderr)
		return callout.RefuseWith(c.tempFail).Because("command failed: " + res.err.Error()), nil
	}
	action, ok := c.opts.ExitCodes[res.status]
	if !ok {
		action = c.opts.Default
	}
	if action == "" {
		action = CommandTempFail
	}
	why := fmt.Sprintf("exit status %d: %s", res.status, action)
	switch action {
	case CommandPass:
		return callout.Keep().Because(why), nil
	case CommandReject:
		r := c.reply
		r.Text = strings.ReplaceAll(r.Text, "{output}", res.firstLine())
		return callout.RefuseWith(r).Because(why), nil
	case CommandHeaders:
		out, err := res.out.Message()
		if err != nil {
			return callout.Decision{}, err
		}
		defer out.Close()
		fields, err := newHeaderFields(msg, out)
		if err != nil {
			tx.Log().Warn("command output unusable, failing closed", "err", err)
			return callout.RefuseWith(c.tempFail).Because("unusable output"), nil
		}
		d := callout.Keep().Because(why)
		d.Headers = fields
		return d, nil
	case CommandReplace:
		if res.out.Len() == 0 {
			return callout.RefuseWith(c.tempFail).Because("empty output to replace the message"), nil
		}
		out, err := res.out.Message()
		if err != nil {
			return callout.Decision{}, err
		}
		return callout.ReplaceMessage(out).Because(why), nil
	}
	return callout.RefuseWith(c.tempFail).Because(why), nil
}

// newHeaderFields returns the header fields of out's top header that msg's
// top header does not have (compared byte for byte, each field counted).
func newHeaderFields(msg, out *callout.Message) ([]callout.Field, error) {
	a, err := msg.Root()
	if err != nil {
		return nil, err
	}
	b, err := out.Root()
	if err != nil {
		return nil, err
	}
	have := map[string]int{}
	for _, f := range a.Fields {
		have[string(f.Raw)]++
	}
	var fields []callout.Field
	for _, f := range b.Fields {
		if have[string(f.Raw)] > 0 {
			have[string(f.Raw)]--
			continue
		}
		name, value, _ := strings.Cut(strings.TrimRight(string(f.Raw), "\r\n"), ":")
		fl := callout.Field{Name: strings.TrimSpace(name), Value: strings.TrimPrefix(value, " ")}
		if err := fl.Validate(); err != nil {
			return nil, err
		}
		fields = append(fields, fl)
	}
	return fields, nil
}
