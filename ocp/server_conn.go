package ocp

import (
	"context"
	"crypto/tls"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// serverConn is one processor connection served by a Server.
type serverConn struct {
	s      *Server
	c      *conn
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	gotCS    bool
	more     bool // the processor's last NO had Offer-Pending: true
	profile  *Feature
	groups   map[int64]*Group
	lastSG   int64
	txs      map[int64]*ServerTx
	lastXid  int64
	handlers sync.WaitGroup
}

func (s *Server) serveConn(nc net.Conn) {
	log := s.logger().With("remote", nc.RemoteAddr().String())
	if s.TLSConfig != nil {
		tc := tls.Server(nc, s.TLSConfig)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			log.Warn("ocp: TLS handshake failed", "err", err)
			nc.Close()
			return
		}
		nc = tc
	}
	sc := &serverConn{
		s:      s,
		groups: make(map[int64]*Group),
		txs:    make(map[int64]*ServerTx),
	}
	sc.ctx, sc.cancel = context.WithCancel(context.Background())
	defer sc.cancel()
	sc.c = newConn(nc, s.Limits, log)
	if !s.track(sc, true) {
		sc.c.terminate(Failure("server shutting down"), nil)
		return
	}
	defer s.track(sc, false)
	log.Debug("ocp: connection accepted")
	_ = sc.c.send(&Message{Name: MsgCS}, false)
	sc.readLoop()
	sc.cancel()
	sc.handlers.Wait()
	log.Debug("ocp: connection ended", "err", sc.c.connErr())
}

func (sc *serverConn) inFlight() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.txs)
}

func (sc *serverConn) readLoop() {
	defer sc.abortAll()
	idle := sc.s.IdleTimeout
	for {
		if idle > 0 {
			sc.c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		m, err := sc.c.dec.Decode()
		if err != nil {
			if isTimeout(err) && !sc.c.dec.partial {
				if sc.inFlight() == 0 {
					sc.c.terminate(Result{Code: CodeOK, Reason: "idle timeout"}, nil)
					return
				}
				continue
			}
			sc.c.readErr(err)
			return
		}
		if end := sc.dispatch(m); end != nil {
			sc.c.dispatchEnd(end, m, "processor")
			return
		}
	}
}

// abortAll fails every open transaction once the connection has ended.
func (sc *serverConn) abortAll() { abortTxs(sc.c, &sc.mu, sc.txs) }

// dispatch handles one message from the processor; see Client.dispatch for
// the conventions.
func (sc *serverConn) dispatch(m *Message) *ConnError {
	sc.mu.Lock()
	first := !sc.gotCS
	sc.gotCS = true
	more := sc.more
	sc.mu.Unlock()
	if first {
		if m.Name != MsgCS {
			return connFailure("expected CS, got %s", m.Name)
		}
		return nil
	}
	if more && !phaseMessage(m.Name) {
		return connFailure("%s during the negotiation phase", m.Name)
	}
	switch m.Name {
	case MsgCS:
		return nil
	case MsgCE:
		res, err := resultOf(m, 0)
		if err != nil {
			res = Failure("bad result")
		}
		return &ConnError{Result: res, Remote: true}
	case MsgNO:
		return sc.handleNO(m)
	case MsgNR:
		return connFailure("NR without a pending offer")
	case MsgSGC:
		return sc.handleSGC(m)
	case MsgSGD:
		id, err := m.AnonUint(0)
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if err != nil || sc.groups[id] == nil {
			return connFailure("SGD for unknown service group")
		}
		delete(sc.groups, id)
	case MsgTS:
		return sc.handleTS(m)
	case MsgPQ:
		sc.answerPQ(m)
	case MsgAQ:
		f, err := ParseFeature(anon(m, 0))
		if err != nil {
			return connFailure("AQ: %v", err)
		}
		_ = sc.c.send(&Message{Name: MsgAA, Anon: []Value{BoolAtom(sc.supports(f.URI))}}, false)
	case MsgTE, MsgAMS, MsgAME, MsgDUM, MsgDSS, MsgDWP, MsgDPM, MsgDWM:
		xid, err := m.AnonUint(0)
		if err != nil {
			return connFailure("%s: bad xid: %v", m.Name, err)
		}
		sc.mu.Lock()
		tx, last := sc.txs[xid], sc.lastXid
		sc.mu.Unlock()
		if xid > last || xid == 0 {
			return connFailure("%s for unknown transaction %d", m.Name, xid)
		}
		if tx != nil {
			tx.handle(m)
			tx.backpressure()
		}
	}
	return nil
}

// supports reports whether a feature is negotiated on this connection.
func (sc *serverConn) supports(uri string) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.profile != nil && sc.profile.URI == uri {
		return true
	}
	for _, g := range sc.groups {
		if g.Profile != nil && g.Profile.URI == uri {
			return true
		}
	}
	return false
}

func (sc *serverConn) handleSGC(m *Message) *ConnError {
	id, err := m.AnonUint(0)
	if err != nil || id == 0 {
		return connFailure("SGC: bad sg-id")
	}
	var services []Service
	if len(m.Anon) > 1 {
		if services, err = ParseServices(m.Anon[1]); err != nil {
			return connFailure("SGC: %v", err)
		}
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if id <= sc.lastSG {
		return connFailure("SGC: sg-id %d not above %d", id, sc.lastSG)
	}
	sc.lastSG = id
	sc.groups[id] = &Group{ID: id, Services: services}
	return nil
}

func (sc *serverConn) handleNO(m *Message) *ConnError {
	fs, sgID, more, end := readNO(m)
	if end != nil {
		return end
	}
	var g *Group
	if sgID != 0 {
		sc.mu.Lock()
		g = sc.groups[sgID]
		sc.mu.Unlock()
		if g == nil {
			return connFailure("NO for unknown service group %d", sgID)
		}
	}
	var sel *Feature
	if len(fs) > 0 && sc.s.Negotiate != nil {
		if f, ok := sc.s.Negotiate(g, fs); ok {
			if !offered(fs, f.URI) {
				sc.c.log.Error("ocp: Negotiate selected a feature that was not offered", "uri", f.URI)
			} else {
				sel = &f
			}
		}
	}
	nr := &Message{Name: MsgNR}
	if sel != nil {
		nr.Anon = []Value{sel.Value()}
	}
	if sgID != 0 {
		nr.Named = []Param{NewParam(ParamSG, Num(sgID))}
	}
	sc.mu.Lock()
	sc.more = more
	if sel != nil {
		if g != nil {
			g.Profile = sel
		} else {
			sc.profile = sel
		}
	}
	sc.mu.Unlock()
	_ = sc.c.send(nr, false)
	sc.c.setPhase(more)
	return nil
}

func (sc *serverConn) handleTS(m *Message) *ConnError {
	xid, err := m.AnonUint(0)
	if err != nil || xid == 0 {
		return connFailure("TS: bad xid")
	}
	sgID, err := m.AnonUint(1)
	if err != nil {
		return connFailure("TS: bad sg-id")
	}
	sc.mu.Lock()
	if xid <= sc.lastXid {
		sc.mu.Unlock()
		return connFailure("TS: xid %d not above %d", xid, sc.lastXid)
	}
	sc.lastXid = xid
	g := sc.groups[sgID]
	if g == nil || sc.s.closing() {
		sc.mu.Unlock()
		res := Failure("unknown service group")
		if g != nil {
			res = sc.s.refusal()
		}
		_ = sc.c.send(withResult(&Message{Name: MsgTE, Anon: []Value{Num(xid)}}, res), false)
		return nil
	}
	ctx, cancel := context.WithCancel(sc.ctx)
	tx := &ServerTx{group: g}
	tx.txCore = newTxCore(sc.c, xid, true, func() {
		cancel()
		sc.mu.Lock()
		delete(sc.txs, xid)
		sc.mu.Unlock()
	})
	sc.txs[xid] = tx
	sc.handlers.Add(1)
	sc.mu.Unlock()
	go sc.serveTx(ctx, tx)
	return nil
}

// serveTx runs the handler for one transaction and ends the transaction
// if the handler did not.
func (sc *serverConn) serveTx(ctx context.Context, tx *ServerTx) {
	defer sc.handlers.Done()
	defer func() {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultWriteTimeout)
		defer cancel()
		if r := recover(); r != nil {
			sc.c.log.Error("ocp: handler panic", "xid", tx.xid, "panic", r, "stack", string(debug.Stack()))
			_ = tx.End(ectx, Failure("internal error"))
			return
		}
		tx.mu.Lock()
		midMessage := tx.out.active()
		tx.mu.Unlock()
		if midMessage {
			_ = tx.End(ectx, Failure("handler returned mid-message"))
		} else {
			_ = tx.End(ectx, Result{})
		}
	}()
	sc.s.Handler.ServeOCP(ctx, tx)
}

func (sc *serverConn) answerPQ(m *Message) {
	pa := &Message{Name: MsgPA}
	if len(m.Anon) > 0 {
		if xid, err := Uint(m.Anon[0]); err == nil {
			sc.mu.Lock()
			tx := sc.txs[xid]
			sc.mu.Unlock()
			if tx != nil {
				pa.Anon = []Value{Num(xid)}
				if n, active := tx.progress(); active {
					pa.Named = []Param{NewParam(ParamOrgData, Num(n))}
				}
			}
		}
	}
	_ = sc.c.send(pa, false)
}
