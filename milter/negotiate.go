package milter

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
)

// plan is what the server asks of every MTA, derived once from the
// bridge's Requirements.
type plan struct {
	req      bridge.Requirements
	actions  gomilter.OptAction
	protocol gomilter.OptProtocol
	macros   [][]gomilter.MacroName // indexed by gomilter.MacroStage
}

// importantProtocol are the protocol bits whose absence changes what the
// bridge sees; the rest only save round trips.
const importantProtocol = gomilter.OptHeaderLeadingSpace

// newPlan maps Requirements to milter negotiation bits:
//   - CONNECT is always asked for, so that the bridge learns the client;
//     its reply only when Requirements.Replies has EventConnect (a refused
//     session is answered 451 4.3.2 at the first event that has a reply);
//   - an event the bridge does not want is switched off (SMFIP_NO*) and,
//     since the adapter would answer it Continue anyway, its reply too
//     (SMFIP_NR_*); a wanted event outside Requirements.Replies keeps its
//     event but loses its reply (SMFIP_NR_*); with Replies zero every
//     wanted event keeps its reply;
//   - UNKNOWN is switched off, SKIP and HDR_LEADSPC are asked for;
//   - actions follow Requirements.Actions, plus SETSYMLIST: the macros of
//     Requirements.Macros are requested on top of baseMacros.
func newPlan(req bridge.Requirements) plan {
	p := plan{req: req}
	p.protocol = gomilter.OptNoUnknown | gomilter.OptNoUnknownReply |
		gomilter.OptSkip | gomilter.OptHeaderLeadingSpace
	if req.Replies != 0 && req.Replies&bridge.EventConnect == 0 {
		p.protocol |= gomilter.OptNoConnReply
	}
	for _, e := range replyEvents {
		switch {
		case !e.want(req):
			p.protocol |= e.no | e.nr
		case req.Replies != 0 && req.Replies&e.ev == 0:
			// Wanted, but the bridge never answers it with anything
			// but Continue: the MTA need not wait for the reply.
			p.protocol |= e.nr
		}
	}

	acts := []struct {
		a bridge.Actions
		o gomilter.OptAction
	}{
		{bridge.ActAddHeader, gomilter.OptAddHeader},
		{bridge.ActChangeHeader, gomilter.OptChangeHeader},
		{bridge.ActReplaceBody, gomilter.OptChangeBody},
		{bridge.ActAddRcpt, gomilter.OptAddRcpt | gomilter.OptAddRcptWithArgs},
		{bridge.ActDelRcpt, gomilter.OptRemoveRcpt},
		{bridge.ActChangeFrom, gomilter.OptChangeFrom},
		{bridge.ActQuarantine, gomilter.OptQuarantine},
	}
	for _, a := range acts {
		if req.Actions&a.a != 0 {
			p.actions |= a.o
		}
	}

	p.macros = make([][]gomilter.MacroName, gomilter.StageEndMarker)
	add := func(st gomilter.MacroStage, names ...string) {
		for _, n := range names {
			if n != "" && !slices.Contains(p.macros[st], gomilter.MacroName(n)) {
				p.macros[st] = append(p.macros[st], gomilter.MacroName(n))
			}
		}
	}
	for _, b := range baseMacros {
		add(b.stage, b.names...)
	}
	for st, names := range req.Macros {
		if gs, ok := macroStage(st); ok {
			add(gs, names...)
		}
	}
	p.actions |= gomilter.OptSetMacros
	return p
}

// replyEvents are the events after CONNECT (which is always asked for)
// with a reply that the MTA may be told not to wait for, with their
// negotiation bits.
var replyEvents = []struct {
	want   func(bridge.Requirements) bool
	ev     bridge.Events
	no, nr gomilter.OptProtocol
}{
	{func(r bridge.Requirements) bool { return r.Helo }, bridge.EventHelo, gomilter.OptNoHelo, gomilter.OptNoHeloReply},
	{func(r bridge.Requirements) bool { return r.Mail }, bridge.EventMail, gomilter.OptNoMailFrom, gomilter.OptNoMailReply},
	{func(r bridge.Requirements) bool { return r.Rcpt }, bridge.EventRcpt, gomilter.OptNoRcptTo, gomilter.OptNoRcptReply},
	{func(r bridge.Requirements) bool { return r.Data }, bridge.EventData, gomilter.OptNoData, gomilter.OptNoDataReply},
	{func(r bridge.Requirements) bool { return r.Headers }, bridge.EventHeader, gomilter.OptNoHeaders, gomilter.OptNoHeaderReply},
	{func(r bridge.Requirements) bool { return r.EndOfHeaders }, bridge.EventEndOfHeaders, gomilter.OptNoEOH, gomilter.OptNoEOHReply},
	{func(r bridge.Requirements) bool { return r.Body }, bridge.EventBody, gomilter.OptNoBody, gomilter.OptNoBodyReply},
}

// narrow adds to protocol, the plan's bits for one connection, the
// no-reply bit of every event of the plan's replies that the handler does
// not need now (bridge.Handler.Replies).
func (p plan) narrow(protocol gomilter.OptProtocol, now bridge.Events) gomilter.OptProtocol {
	if p.req.Replies == 0 {
		return protocol
	}
	for _, e := range replyEvents {
		if p.req.Replies&e.ev != 0 && now&e.ev == 0 {
			protocol |= e.nr
		}
	}
	return protocol
}

// replies returns the events whose replies the MTA waits for under a
// negotiated protocol: end of message, and every event neither switched
// off nor freed of its reply.
func replies(protocol gomilter.OptProtocol) bridge.Events {
	r := bridge.EventEndOfMessage
	if protocol&gomilter.OptNoConnReply == 0 {
		r |= bridge.EventConnect
	}
	for _, e := range replyEvents {
		if protocol&(e.no|e.nr) == 0 {
			r |= e.ev
		}
	}
	return r
}

// baseMacros are requested whatever the bridge asks for: a SETSYMLIST
// list replaces the MTA's default list for its stage, so these keep the
// usual ones available to Macros.Get. "v" tells Postfix from Sendmail;
// "i" exists in Postfix only from DATA on, in Sendmail from MAIL on.
var baseMacros = []struct {
	stage gomilter.MacroStage
	names []string
}{
	{gomilter.StageConnect, []string{"v", "j", "{daemon_name}", "{client_addr}", "{client_name}"}},
	{gomilter.StageHelo, []string{"{tls_version}", "{cipher}"}},
	{gomilter.StageMail, []string{"i", "{auth_authen}"}},
	{gomilter.StageData, []string{"i"}},
	{gomilter.StageEOH, []string{"i"}},
	{gomilter.StageEOM, []string{"i"}},
}

// macroStage maps a bridge stage to go-milter's (both follow SMFIM_*).
func macroStage(s bridge.Stage) (gomilter.MacroStage, bool) {
	switch s {
	case bridge.StageConnect:
		return gomilter.StageConnect, true
	case bridge.StageHelo:
		return gomilter.StageHelo, true
	case bridge.StageMail:
		return gomilter.StageMail, true
	case bridge.StageRcpt:
		return gomilter.StageRcpt, true
	case bridge.StageData:
		return gomilter.StageData, true
	case bridge.StageEOM:
		return gomilter.StageEOM, true
	case bridge.StageEOH:
		return gomilter.StageEOH, true
	}
	return 0, false
}

// serverOptions turns the plan into go-milter server options; now is
// bridge.Handler.Replies, asked at each negotiation.
func (p plan) serverOptions(logger *slog.Logger, now func() bridge.Events) []gomilter.Option {
	opts := []gomilter.Option{
		gomilter.WithActions(p.actions),
		gomilter.WithProtocols(p.protocol),
		gomilter.WithNegotiationCallback(p.negotiate(logger, now)),
	}
	for st, names := range p.macros {
		if len(names) > 0 {
			opts = append(opts, gomilter.WithMacroRequest(gomilter.MacroStage(st), names))
		}
	}
	return opts
}

// negotiate returns the callback that degrades instead of refusing: every
// action or protocol bit the MTA does not offer is dropped and logged, and
// the session goes on. Only a protocol version below 2 is refused.
//
// Why not refuse: an MTA refused at negotiation applies its default action
// (tempfail) to every message, while a degraded session fails only what it
// cannot do: a missing action makes that Modifier method return
// ErrNotNegotiated (the bridge then tempfails the message), a missing
// SMFIP_HDR_LEADSPC is compensated (one SP added on read and removed on
// write, exact unless the original header had no space or a TAB after the
// colon), a missing SKIP or SMFIP_NO* costs round trips only. Postfix >= 2.6
// (protocol 6) and Sendmail >= 8.14 offer everything, so this matters for
// old or partial MTAs and test tools.
//
// The replies of the plan that the handler does not need now (now, that
// is bridge.Handler.Replies) are negotiated away for this connection
// (plan.narrow).
func (p plan) negotiate(logger *slog.Logger, now func() bridge.Events) gomilter.NegotiationCallbackFunc {
	return func(mtaVersion, milterVersion uint32, mtaActions, milterActions gomilter.OptAction,
		mtaProtocol, milterProtocol gomilter.OptProtocol, _ gomilter.DataSize,
	) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
		if mtaVersion < 2 {
			return 0, 0, 0, 0, fmt.Errorf("milter: MTA offers protocol version %d, need at least 2", mtaVersion)
		}
		version := min(mtaVersion, milterVersion)
		if missing := milterActions &^ mtaActions; missing != 0 {
			logger.Warn("milter: MTA does not offer actions; degrading",
				"missing", missing.String(), "mta_version", mtaVersion)
		}
		if missing := milterProtocol &^ mtaProtocol; missing != 0 {
			level := slog.LevelInfo
			if missing&importantProtocol != 0 {
				level = slog.LevelWarn
			}
			logger.Log(context.Background(), level, "milter: MTA does not offer protocol options; degrading",
				"missing", missing.String(), "mta_version", mtaVersion)
		}
		// Never ask for more than 64 KiB packets: it keeps the frame cap
		// meaningful, and Postfix never offers more.
		protocol := milterProtocol & mtaProtocol
		if now != nil {
			protocol = p.narrow(milterProtocol, now()) & mtaProtocol
		}
		return version, milterActions & mtaActions, protocol, gomilter.DataSize64K, nil
	}
}
