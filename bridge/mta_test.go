package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/emersion/go-message/textproto"

	"github.com/opes-milter/opes-milter/bridge"
)

// The bridge tests drive bridge.Session in process, as an MTA adapter does
// (package milter in production; opes-milter try does the same): no milter
// wire protocol, no go-milter, no TCP. The client below plays the MTA and
// the adapter together, with the adapter's rules that the bridge relies on:
// events the bridge does not ask for are not delivered, events it does not
// answer (Requirements.Replies narrowed by Handler.Replies) are answered Continue whatever it says, a
// refused session answers 451 4.3.2 at every answered event, Skip stops
// the events of its kind, and modifications are recorded at end of
// message. Its names follow the milter client vocabulary (actions and
// modify actions), so that a test reads as an MTA conversation.

// ActionType is what the MTA was answered.
type ActionType int

// The answers.
const (
	ActionAccept ActionType = iota + 1
	ActionContinue
	ActionDiscard
	ActionReject
	ActionTempFail
	ActionRejectWithCode
)

func (t ActionType) String() string {
	return [...]string{"?", "accept", "continue", "discard", "reject", "tempfail", "reject-with-code"}[t]
}

// Action is the answer to one MTA event.
type Action struct {
	Type      ActionType
	SMTPCode  uint16
	SMTPReply string
}

// StopProcessing reports whether the MTA refuses the command.
func (a Action) StopProcessing() bool {
	return a.Type == ActionReject || a.Type == ActionTempFail || a.Type == ActionRejectWithCode
}

// ModifyActionType is a modification at end of message.
type ModifyActionType int

// The modifications.
const (
	ActionAddRcpt ModifyActionType = iota + 1
	ActionDelRcpt
	ActionQuarantine
	ActionReplaceBody
	ActionChangeFrom
	ActionAddHeader
	ActionChangeHeader
	ActionInsertHeader
)

// ModifyAction is one modification, as the MTA would apply it: header
// values with "\n" line ends, addresses in angle brackets.
type ModifyAction struct {
	Type        ModifyActionType
	Rcpt        string
	RcptArgs    string
	From        string
	FromArgs    string
	Body        []byte
	HeaderIndex uint32
	HeaderName  string
	HeaderValue string
	Reason      string
}

// MacroQueueId is the queue ID macro.
const MacroQueueId = "i"

// MacroBag holds the macros the MTA has sent.
type MacroBag struct {
	mu sync.Mutex
	m  map[string]string
}

// NewMacroBag returns an empty MacroBag.
func NewMacroBag() *MacroBag { return &MacroBag{m: map[string]string{}} }

// Set sets macro name ("i", "{daemon_name}").
func (b *MacroBag) Set(name, value string) {
	b.mu.Lock()
	b.m[name] = value
	b.mu.Unlock()
}

// Get implements bridge.Macros, finding "{name}" for "name" and back as
// the milter adapter does.
func (b *MacroBag) Get(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.m[name]; ok {
		return v
	}
	if strings.HasPrefix(name, "{") && strings.HasSuffix(name, "}") && len(name) > 2 {
		return b.m[name[1:len(name)-1]]
	}
	return b.m["{"+name+"}"]
}

// FamilyInet is the address family of a TCP/IPv4 client.
const FamilyInet = "tcp4"

// maxChunk is the largest body chunk an MTA sends (milter's 64 KiB - 1).
const maxChunk = 65535

// refusalText is the milter adapter's answer in a refused session.
const refusalText = "4.3.2 Service currently unavailable, try again later"

// ClientSession is one MTA connection to the bridge. Like the milter
// adapter, it calls the session from one goroutine at a time: a call made
// while another runs (a test's goroutine) waits for it.
type ClientSession struct {
	mu  sync.Mutex
	h   bridge.Handler
	req bridge.Requirements
	// replies are the events the MTA waits for: Requirements().Replies
	// narrowed by Handler.Replies when the session starts.
	replies bridge.Events
	mac     *MacroBag
	ctx     context.Context
	cancel  context.CancelFunc

	sess    bridge.Session
	refused bool
	skip    bool // the bridge answered Skip: no more events of this kind
	inData  bool
	closed  bool
}

// Session starts an MTA connection with macros (nil: none).
func (m *mta) Session(macros *MacroBag) (*ClientSession, error) {
	if macros == nil {
		macros = NewMacroBag()
	}
	ctx, cancel := context.WithCancel(context.Background())
	req := m.br.Requirements()
	return &ClientSession{h: m.br, req: req, replies: req.Replies & m.br.Replies(), mac: macros, ctx: ctx, cancel: cancel}, nil
}

// event runs one event: want says whether the bridge asked for it, reply
// whether the MTA waits for its answer.
func (s *ClientSession) event(want bool, reply bridge.Events, eom bool, fn func() bridge.Reply) *Action {
	if s.refused {
		if s.replies&reply == 0 {
			return &Action{Type: ActionContinue}
		}
		return &Action{Type: ActionRejectWithCode, SMTPCode: 451, SMTPReply: "451 " + refusalText}
	}
	if !want {
		return &Action{Type: ActionContinue}
	}
	r := fn()
	if s.replies&reply == 0 {
		return &Action{Type: ActionContinue}
	}
	return answer(r, eom)
}

// answer maps a bridge reply to what the MTA receives, as package milter
// does.
func answer(r bridge.Reply, eom bool) *Action {
	switch r.Kind {
	case bridge.Continue, bridge.Skip:
		if eom {
			return &Action{Type: ActionAccept, SMTPCode: 250}
		}
		return &Action{Type: ActionContinue, SMTPCode: 250}
	case bridge.Accept, bridge.Discard:
		switch {
		case !eom:
			return &Action{Type: ActionContinue, SMTPCode: 250}
		case r.Kind == bridge.Discard:
			return &Action{Type: ActionDiscard, SMTPCode: 250}
		}
		return &Action{Type: ActionAccept, SMTPCode: 250}
	case bridge.Reject, bridge.TempFail:
		class, plain := 5, &Action{Type: ActionReject, SMTPCode: 550, SMTPReply: "550 5.7.1 Command rejected"}
		if r.Kind == bridge.TempFail {
			class, plain = 4, &Action{Type: ActionTempFail, SMTPCode: 451, SMTPReply: "451 4.7.1 Service unavailable - try again later"}
		}
		rep := r.SMTP
		if rep.IsZero() {
			return plain
		}
		if rep.Code == 0 { // text only: the MTA's default code
			rep.Code = map[int]int{4: 451, 5: 550}[class]
		}
		if rep.Code/100 != class || rep.Validate() != nil {
			return plain
		}
		return &Action{Type: ActionRejectWithCode, SMTPCode: uint16(rep.Code), SMTPReply: rep.String()}
	}
	return &Action{Type: ActionTempFail, SMTPCode: 451}
}

// Conn is the SMTP client's connection: it starts the bridge session.
func (s *ClientSession) Conn(host, family string, port uint16, addr string) (*Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.h.NewSession(s.ctx, s.replies)
	if err != nil {
		s.refused = true
	} else {
		s.sess = sess
	}
	c := bridge.Client{Hostname: host, Family: family, Addr: addr, Port: port}
	return s.event(s.req.Connect, bridge.EventConnect, false, func() bridge.Reply {
		return s.sess.Connect(s.ctx, s.mac, c)
	}), nil
}

// Helo is HELO or EHLO.
func (s *ClientSession) Helo(name string) (*Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.event(s.req.Helo, bridge.EventHelo, false, func() bridge.Reply {
		return s.sess.Helo(s.ctx, s.mac, name)
	}), nil
}

// Mail is MAIL FROM:<from> args.
func (s *ClientSession) Mail(from, args string) (*Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip, s.inData = false, false
	return s.event(s.req.Mail, bridge.EventMail, false, func() bridge.Reply {
		return s.sess.Mail(s.ctx, s.mac, "<"+from+">", strings.Fields(args))
	}), nil
}

// Rcpt is RCPT TO:<rcpt> args.
func (s *ClientSession) Rcpt(rcpt, args string) (*Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skip {
		return &Action{Type: ActionContinue}, nil
	}
	return s.event(s.req.Rcpt, bridge.EventRcpt, false, func() bridge.Reply {
		r := s.sess.Rcpt(s.ctx, s.mac, "<"+rcpt+">", strings.Fields(args))
		s.skip = r.Kind == bridge.Skip
		return r
	}), nil
}

// DataStart is DATA.
func (s *ClientSession) DataStart() (*Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip, s.inData = false, true
	return s.event(s.req.Data, bridge.EventData, false, func() bridge.Reply {
		return s.sess.Data(s.ctx, s.mac)
	}), nil
}

// HeaderField is one header field; value is as the MTA has it (after the
// colon, leading space kept, folds as CRLF or LF).
func (s *ClientSession) HeaderField(name, value string, _ map[string]string) (*Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skip {
		return &Action{Type: ActionContinue}, nil
	}
	value = strings.TrimSuffix(strings.TrimSuffix(value, "\n"), "\r")
	value = strings.ReplaceAll(strings.ReplaceAll(value, "\r\n", "\n"), "\n", "\r\n")
	return s.event(s.req.Headers, bridge.EventHeader, false, func() bridge.Reply {
		r := s.sess.Header(s.ctx, s.mac, name, value)
		s.skip = r.Kind == bridge.Skip
		return r
	}), nil
}

// HeaderEnd is the end of the header.
func (s *ClientSession) HeaderEnd() (*Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip = false
	return s.event(s.req.EndOfHeaders, bridge.EventEndOfHeaders, false, func() bridge.Reply {
		return s.sess.EndOfHeaders(s.ctx, s.mac)
	}), nil
}

// Header sends DATA (when not sent yet), every field of h, then the end
// of the header.
func (s *ClientSession) Header(h textproto.Header) (*Action, error) {
	if !s.inData {
		if act, err := s.DataStart(); err != nil || act.Type != ActionContinue {
			return act, err
		}
	}
	for f := h.Fields(); f.Next() && !s.skip; {
		if act, err := s.HeaderField(f.Key(), f.Value(), nil); err != nil || act.Type != ActionContinue {
			return act, err
		}
	}
	return s.HeaderEnd()
}

// BodyChunk is one body chunk (at most 64 KiB - 1).
func (s *ClientSession) BodyChunk(chunk []byte) (*Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(chunk) > maxChunk {
		return nil, fmt.Errorf("body chunk of %d octets", len(chunk))
	}
	if s.skip {
		return &Action{Type: ActionContinue}, nil
	}
	chunk = bytes.Clone(chunk) // the bridge owns the chunk
	return s.event(s.req.Body, bridge.EventBody, false, func() bridge.Reply {
		r := s.sess.Body(s.ctx, s.mac, chunk)
		s.skip = r.Kind == bridge.Skip
		return r
	}), nil
}

// BodyReadFrom sends r in chunks, then ends the message unless a chunk was
// refused.
func (s *ClientSession) BodyReadFrom(r io.Reader) ([]ModifyAction, *Action, error) {
	buf := make([]byte, maxChunk)
	for !s.skip {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			act, cerr := s.BodyChunk(buf[:n])
			if cerr != nil {
				return nil, nil, cerr
			}
			if act.Type != ActionContinue {
				return nil, act, nil
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return s.End()
}

// End is the end of the message: the bridge applies its modifications,
// then answers.
func (s *ClientSession) End() ([]ModifyAction, *Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip, s.inData = false, false
	if s.refused {
		return nil, &Action{Type: ActionRejectWithCode, SMTPCode: 451, SMTPReply: "451 " + refusalText}, nil
	}
	mod := &modRecorder{}
	r := s.sess.EndOfMessage(s.ctx, s.mac, mod)
	mod.mu.Lock()
	mod.done = true
	mods := mod.mods
	mod.mu.Unlock()
	return mods, answer(r, true), nil
}

// Abort is RSET (or the MTA's abort of the transaction).
func (s *ClientSession) Abort(map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip, s.inData = false, false
	if s.sess != nil {
		s.sess.Abort(s.ctx, s.mac)
	}
	return nil
}

// Close ends the connection.
func (s *ClientSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.sess != nil {
		s.sess.Close()
	}
	s.cancel()
	return nil
}

// modRecorder is the bridge.Modifier of one end of message.
type modRecorder struct {
	mu       sync.Mutex
	mods     []ModifyAction
	done     bool
	replaced bool
}

func (m *modRecorder) add(a ModifyAction) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return fmt.Errorf("modification after end of message")
	}
	m.mods = append(m.mods, a)
	return nil
}

func angle(s string) string {
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		return s
	}
	return "<" + s + ">"
}

func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func (m *modRecorder) AddHeader(name, value string) error {
	return m.add(ModifyAction{Type: ActionAddHeader, HeaderName: name, HeaderValue: lf(value)})
}

func (m *modRecorder) InsertHeader(index int, name, value string) error {
	return m.add(ModifyAction{Type: ActionInsertHeader, HeaderIndex: uint32(index), HeaderName: name, HeaderValue: lf(value)})
}

func (m *modRecorder) ChangeHeader(index int, name, value string) error {
	if index == 0 {
		index = 1
	}
	return m.add(ModifyAction{Type: ActionChangeHeader, HeaderIndex: uint32(index), HeaderName: name, HeaderValue: lf(value)})
}

func (m *modRecorder) ReplaceBody(r io.Reader) error {
	m.mu.Lock()
	if m.replaced {
		m.mu.Unlock()
		return fmt.Errorf("body already replaced")
	}
	m.replaced = true
	m.mu.Unlock()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return m.add(ModifyAction{Type: ActionReplaceBody, Body: b})
}

func (m *modRecorder) ChangeFrom(from, args string) error {
	return m.add(ModifyAction{Type: ActionChangeFrom, From: angle(from), FromArgs: args})
}

func (m *modRecorder) AddRecipient(rcpt, args string) error {
	return m.add(ModifyAction{Type: ActionAddRcpt, Rcpt: angle(rcpt), RcptArgs: args})
}

func (m *modRecorder) DeleteRecipient(rcpt string) error {
	return m.add(ModifyAction{Type: ActionDelRcpt, Rcpt: angle(rcpt)})
}

func (m *modRecorder) Quarantine(reason string) error {
	return m.add(ModifyAction{Type: ActionQuarantine, Reason: reason})
}

func (m *modRecorder) Progress() error { return nil }

var (
	_ bridge.Macros   = (*MacroBag)(nil)
	_ bridge.Modifier = (*modRecorder)(nil)
)
