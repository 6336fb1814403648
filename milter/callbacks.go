package milter

import (
	"context"
	"strings"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
)

// This file holds the go-milter callbacks. None returns an error: an error
// makes go-milter close the milter connection, and Postfix then applies
// milter_default_action to the rest of the SMTP session. Failures are
// answered with replies instead.

// NewConnection resets the connection state: go-milter calls it after
// negotiation and after SMFIC_QUIT_NC (a new SMTP connection on the same
// milter connection).
func (a *adapter) NewConnection(m gomilter.Modifier) error {
	a.closeSession(m)
	return nil
}

// Connect starts the bridge session. A second CONNECT without QUIT_NC is
// taken as a new SMTP connection as well.
func (a *adapter) Connect(host, family string, port uint16, addr string, m gomilter.Modifier) (*gomilter.Response, error) {
	a.closeSession(m)
	c := bridge.Client{Hostname: host, Family: family, Addr: addr, Port: port}
	return a.handle(evConnect, a.req.Connect, m, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.Connect(ctx, mac, c)
	})
}

// Helo passes HELO/EHLO; it may come again (after STARTTLS).
func (a *adapter) Helo(name string, m gomilter.Modifier) (*gomilter.Response, error) {
	return a.handle(evHelo, a.req.Helo, m, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.Helo(ctx, mac, name)
	})
}

// MailFrom restores what go-milter took apart: the angle brackets and the
// separate ESMTP arguments.
func (a *adapter) MailFrom(from, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	return a.handle(evMail, a.req.Mail, m, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.Mail(ctx, mac, "<"+from+">", splitArgs(esmtpArgs))
	})
}

// RcptTo passes one recipient, like MailFrom.
func (a *adapter) RcptTo(rcpt, esmtpArgs string, m gomilter.Modifier) (*gomilter.Response, error) {
	return a.handle(evRcpt, a.req.Rcpt, m, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.Rcpt(ctx, mac, "<"+rcpt+">", splitArgs(esmtpArgs))
	})
}

// Data passes the DATA command.
func (a *adapter) Data(m gomilter.Modifier) (*gomilter.Response, error) {
	return a.handle(evData, a.req.Data, m, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.Data(ctx, mac)
	})
}

// Header passes one header field with its raw value.
func (a *adapter) Header(name, value string, m gomilter.Modifier) (*gomilter.Response, error) {
	v := a.headerIn(value)
	return a.handle(evHeader, a.req.Headers, m, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.Header(ctx, mac, name, v)
	})
}

// Headers is the end of the header (EOH).
func (a *adapter) Headers(m gomilter.Modifier) (*gomilter.Response, error) {
	return a.handle(evEOH, a.req.EndOfHeaders, m, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.EndOfHeaders(ctx, mac)
	})
}

// BodyChunk passes one body chunk; go-milter allocates it per packet, so
// the bridge may keep it.
func (a *adapter) BodyChunk(chunk []byte, m gomilter.Modifier) (*gomilter.Response, error) {
	return a.handle(evBody, a.req.Body, m, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.Body(ctx, mac, chunk)
	})
}

// EndOfMessage lets the bridge apply its modifications, then answers.
func (a *adapter) EndOfMessage(m gomilter.Modifier) (*gomilter.Response, error) {
	a.open(m)
	if a.refused != nil {
		return a.srv.refusal, nil
	}
	mod := &eomModifier{m: m, leadSpace: a.protocol&gomilter.OptHeaderLeadingSpace != 0}
	r := a.guard(evEOM, m, mod.Progress, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
		return a.sess.EndOfMessage(ctx, mac, mod)
	})
	mod.finish()
	return a.response(evEOM, r), nil
}

// Abort ends the mail transaction; go-milter also synthesises it when a
// new transaction starts without one and filters duplicates.
func (a *adapter) Abort(m gomilter.Modifier) error {
	if a.sess != nil {
		a.guard(evAbort, m, nil, func(ctx context.Context, mac bridge.Macros) bridge.Reply {
			a.sess.Abort(ctx, mac)
			return bridge.Reply{}
		})
	}
	return nil
}

// Unknown is switched off at negotiation; should an MTA send it anyway,
// it is let through.
func (a *adapter) Unknown(string, gomilter.Modifier) (*gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

// Cleanup runs once when the milter connection ends.
func (a *adapter) Cleanup(m gomilter.Modifier) {
	a.closeSession(m)
	a.cancel()
	a.srv.track.adapterEnd()
}

// headerIn turns a header value as the MTA sent it into the bridge's raw
// form: folds as "\r\n", and the one leading SP back that the MTA removed
// when SMFIP_HDR_LEADSPC is not in effect.
func (a *adapter) headerIn(v string) string {
	if strings.IndexByte(v, '\n') >= 0 {
		v = strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\n", "\r\n")
	}
	if a.protocol&gomilter.OptHeaderLeadingSpace == 0 {
		v = " " + v
	}
	return v
}

// splitArgs splits go-milter's space-joined ESMTP arguments (an
// esmtp-value never contains a space).
func splitArgs(s string) []string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil
	}
	return f
}
