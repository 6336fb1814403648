package bridge

import (
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// PolicyFromConfig compiles the opes-milter side of a loaded configuration
// into a Policy.
func PolicyFromConfig(c *mapping.Config) (*Policy, error) {
	p := &Policy{
		SystemURI:       c.Trace.SystemURI,
		TraceVia:        c.Trace.Via,
		MaxSessions:     c.Milter.MaxSessions,
		MaxTransactions: c.Milter.MaxTransactions,
		MaxHeaderBytes:  1 << 20,
		SpoolDir:        c.Milter.SpoolDir,
		SpoolMemory:     int(c.Milter.SpoolMemory),
		MaxMessageSize:  c.Milter.MaxMessageSize,
		Oversize:        actionFrom(c.Milter.Oversize),
		NonSMTP:         c.Milter.IsNonSMTP,
		Timeouts: Timeouts{
			Connect:      c.Milter.Timeouts.Connect,
			Helo:         c.Milter.Timeouts.Helo,
			Mail:         c.Milter.Timeouts.Mail,
			Rcpt:         c.Milter.Timeouts.Rcpt,
			Data:         c.Milter.Timeouts.Data,
			EndOfMessage: c.Milter.Timeouts.EndOfMessage,
			Progress:     c.Milter.Timeouts.ProgressInterval,
		},
	}
	bypass := c.Bypass
	p.Bypassable = bypass.Allows

	sets := map[*mapping.ServerSet]*ServerSet{}
	for _, s := range c.Servers {
		set := &ServerSet{
			Name:         s.Name,
			Addresses:    s.Addresses,
			RoundRobin:   s.Strategy == mapping.RoundRobin,
			Connections:  s.Connections,
			IdleTimeout:  s.IdleTimeout,
			FailureLimit: s.FailureLimit,
			RevivalDelay: s.RevivalDelay,
			Client: ocp.ClientConfig{
				HandshakeTimeout: s.HandshakeTimeout,
				Dialer:           &net.Dialer{Timeout: s.ConnectTimeout},
			},
		}
		if s.TLS != nil {
			tc, err := s.TLS.ClientConfig()
			if err != nil {
				return nil, fmt.Errorf("server set %q: %w", s.Name, err)
			}
			set.Client.TLS = tc
		}
		sets[s] = set
	}
	chains := map[*mapping.Chain]*Chain{}
	for _, mc := range c.Chains {
		ch := &Chain{Name: mc.Name, Servers: sets[mc.Server], OnFailure: map[FailureClass]Action{}}
		for _, svc := range mc.Services {
			ch.Services = append(ch.Services, ocp.Service{URI: svc.URI, Params: serviceParams(svc.Params)})
		}
		for _, cls := range []FailureClass{FailConnect, FailTimeout, FailProtocol, FailServer, FailLocal} {
			ch.OnFailure[cls] = actionFrom(mc.OnFailure.For(cls))
		}
		chains[mc] = ch
	}
	routes := map[*mapping.Route]*Route{}
	for _, mr := range c.Routes {
		r := &Route{Name: mr.Name, Chain: chains[mr.Chain], Profile: ocpsmtp.Profile{
			URI:         mr.Profile.URI(),
			Adaptive:    mr.Adaptive,
			Informative: mr.Informative,
			HeaderList:  mr.HeaderList,
		}}
		routes[mr] = r
		p.Routes = append(p.Routes, r)
	}
	p.Select = func(f Facts) *Route {
		r, ok := c.Route(mappingFacts(f))
		if !ok {
			return nil
		}
		return routes[r]
	}
	p.Skip = func(f Facts) bool {
		_, ok := c.Skip(mappingFacts(f))
		return ok
	}
	return p, nil
}

func mappingFacts(f Facts) mapping.Facts {
	addr, _ := netip.ParseAddr(f.ClientAddr)
	return mapping.Facts{
		DaemonName: f.DaemonName, ClientAddr: addr, Authenticated: f.Authenticated,
		SenderDomain: f.SenderDomain, RcptDomain: f.RcptDomain, NonSMTP: f.NonSMTP,
	}
}

func serviceParams(m map[string]string) []ocp.Param {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ocp.Param, 0, len(keys))
	for _, k := range keys {
		out = append(out, ocp.NewParam(k, ocp.Atom(m[k])))
	}
	return out
}

func actionFrom(a mapping.Action) Action {
	switch a {
	case mapping.Accept, mapping.SkipAdaptation:
		return ActionAccept
	case mapping.Reject:
		return ActionReject
	case mapping.Quarantine:
		return ActionQuarantine
	}
	return ActionTempFail
}
