package ocp

import (
	"context"
	"fmt"
	"time"
)

// Service groups (RFC 4037 §11.3-11.4) and the processor's own
// negotiation offers (§6, §11.18-11.19).

// pendingOffer is a negotiation offer we sent and wait an NR for.
type pendingOffer struct {
	sg       int64
	features []Feature
	reply    chan negResult
}

type negResult struct {
	selected *Feature
	err      error
}

// ServiceGroup is a service group created by the processor with SGC
// (RFC 4037 §11.3) and the profile negotiated for it.
type ServiceGroup struct {
	ID       int64
	Services []Service
	Profile  *Feature // negotiated profile, nil if none
	dead     bool
}

// NewServiceGroup creates a service group (SGC) for services and, when
// offer is not empty, negotiates a feature for it (NO with SG, RFC 4037
// §6). It returns the feature the server selected. When the server
// selects none, the group is still created and returned together with a
// *NegotiationError; when it selects a feature that was not offered the
// connection is ended (CE 400) and the error is a *NegotiationError.
func (cl *Client) NewServiceGroup(ctx context.Context, services []Service, offer []Feature) (*ServiceGroup, Feature, error) {
	select {
	case cl.negMu <- struct{}{}:
	case <-ctx.Done():
		return nil, Feature{}, ctx.Err()
	case <-cl.c.done:
		return nil, Feature{}, cl.c.connErr()
	}
	defer func() { <-cl.negMu }()
	// SGC may not be sent during a negotiation phase the server keeps open.
	for cl.c.inPhase() {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return nil, Feature{}, ctx.Err()
		case <-cl.c.done:
			return nil, Feature{}, cl.c.connErr()
		}
	}
	cl.mu.Lock()
	cl.lastSG++
	sg := &ServiceGroup{ID: cl.lastSG, Services: services}
	cl.groups[sg.ID] = sg
	var o *pendingOffer
	if len(offer) > 0 {
		o = newOffer(sg.ID, offer)
		cl.offer = o
		for _, f := range offer {
			cl.offered[f.URI] = true
		}
	}
	cl.mu.Unlock()
	err := cl.c.send(&Message{Name: MsgSGC, Anon: []Value{Num(sg.ID), ServicesValue(services)}}, false)
	if err != nil || o == nil {
		return sg, Feature{}, err
	}
	cl.c.setPhase(true)
	no := &Message{Name: MsgNO, Anon: []Value{FeaturesValue(offer)}, Named: []Param{NewParam(ParamSG, Num(sg.ID))}}
	if err := cl.c.send(no, false); err != nil {
		return nil, Feature{}, err
	}
	r, err := cl.await(ctx, o)
	if err != nil {
		return nil, Feature{}, err
	}
	if r.err != nil {
		return sg, Feature{}, r.err
	}
	return sg, *r.selected, nil
}

func newOffer(sg int64, fs []Feature) *pendingOffer {
	return &pendingOffer{sg: sg, features: fs, reply: make(chan negResult, 1)}
}

// await waits for the NR answering o. A negotiation that does not finish in
// time ends the connection (RFC 4037 §2.7).
func (cl *Client) await(ctx context.Context, o *pendingOffer) (negResult, error) {
	t := time.NewTimer(cl.cfg.handshakeTimeout())
	defer t.Stop()
	select {
	case r := <-o.reply:
		return r, nil
	case <-cl.c.done:
		return negResult{}, cl.c.connErr()
	case <-ctx.Done():
		cl.c.terminate(Failure("negotiation abandoned"), ctx.Err())
		return negResult{}, ctx.Err()
	case <-t.C:
		cl.c.terminate(Failure("negotiation timeout"), nil)
		return negResult{}, fmt.Errorf("ocp: negotiation timeout: %w", cl.c.connErr())
	}
}

// DestroyServiceGroup sends SGD for sg. Transactions already started with
// it are not affected.
func (cl *Client) DestroyServiceGroup(sg *ServiceGroup) error {
	cl.mu.Lock()
	if cl.groups[sg.ID] != sg {
		cl.mu.Unlock()
		return fmt.Errorf("%w: unknown service group %d", ErrState, sg.ID)
	}
	delete(cl.groups, sg.ID)
	sg.dead = true
	cl.mu.Unlock()
	return cl.c.send(&Message{Name: MsgSGD, Anon: []Value{Num(sg.ID)}}, false)
}
