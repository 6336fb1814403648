package bridge

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// RefusedError is a callout server's refusal of a chain's service group.
// OCP's NR says only that nothing was selected, so the services the
// server refuses are found by offering each alone (see refusedServices).
type RefusedError struct {
	Server string // address
	Chain  string
	// Services are the configured names (URIs when unnamed) of the
	// services the server refused on their own; empty when each alone
	// was accepted (then the profile or the combination is to blame).
	Services []string
	Err      error // the negotiation error of the whole group
}

// Error names the refused services; the server and chain are left to
// the caller's context.
func (e *RefusedError) Error() string {
	if len(e.Services) == 0 {
		return fmt.Sprintf("service group refused (each service alone is accepted: the profile offer or the combination is refused): %v", e.Err)
	}
	return fmt.Sprintf("the callout server refused service %s: %v", strings.Join(e.Services, ", "), e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// serviceName is the configured name of the chain's i-th service with
// its URI.
func serviceName(c *mapping.Chain, i int) string {
	if i < len(c.Services) && c.Services[i].Name != "" {
		return fmt.Sprintf("%q (%s)", c.Services[i].Name, c.Group[i].URI)
	}
	return c.Group[i].URI
}

// refusal explains a failed negotiation of chain's group on c: when the
// server selected nothing, each service is offered alone (a group of its
// own, destroyed after) to name those the server refuses. Other errors
// are returned as they are.
func refusal(ctx context.Context, c *ocp.Client, addr string, chain *mapping.Chain, offer ocpsmtp.Profile, err error) error {
	var ne *ocp.NegotiationError
	if !errors.As(err, &ne) || ne.Selected != nil {
		return err
	}
	re := &RefusedError{Server: addr, Chain: chain.Name, Err: err}
	if len(chain.Group) > 1 {
		for i, s := range chain.Group {
			sg, _, err := c.NewServiceGroup(ctx, []ocp.Service{s}, []ocp.Feature{offer.Feature()})
			if sg != nil {
				c.DestroyServiceGroup(sg)
			}
			if errors.As(err, &ne) && ne.Selected == nil {
				re.Services = append(re.Services, serviceName(chain, i))
			} else if err != nil {
				break // the connection failed: nothing more to learn
			}
		}
	} else if len(chain.Group) == 1 {
		re.Services = []string{serviceName(chain, 0)}
	}
	return re
}

// ProbeResult is what negotiating one service group (a chain with the
// offer of a route) with one callout server found.
type ProbeResult struct {
	ServerSet string
	Server    string // address
	Chain     string
	Route     string // the route whose offer was made (the first of those sharing it)
	// Answer is the profile the server selected; valid when Err is nil.
	Answer ocpsmtp.Profile
	// Err is why the chain cannot use the server: it could not be
	// reached, or refused the group (*RefusedError), or answered
	// against the profile's rules.
	Err error
}

// probeGroup is one service group a server set negotiates: a chain and
// the route whose offer it makes.
type probeGroup struct {
	chain *mapping.Chain
	route *mapping.Route
}

// groupsBySet returns the server sets the routes use, sorted by name, and
// for each the service groups its connections negotiate (one per chain
// and offer, as the pool keys them), in route order.
func groupsBySet(routes []*mapping.Route) ([]*mapping.ServerSet, map[*mapping.ServerSet][]probeGroup) {
	groups := map[*mapping.ServerSet][]probeGroup{}
	seen := map[groupKey]bool{}
	var sets []*mapping.ServerSet
	for _, r := range routes {
		k := keyOf(r)
		if seen[k] {
			continue
		}
		seen[k] = true
		set := r.Chain.Server
		if _, ok := groups[set]; !ok {
			sets = append(sets, set)
		}
		groups[set] = append(groups[set], probeGroup{chain: r.Chain, route: r})
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	return sets, groups
}

// Probe connects to every server of every server set p's routes use and
// negotiates every service group there, each on its own, as the daemon
// would; it reports per server and group what was accepted or refused and
// why. Nothing is sent but CS, NO, SGC, SGD and CE.
func Probe(ctx context.Context, p *Policy) []ProbeResult {
	sets, groups := groupsBySet(p.Routes)
	var out []ProbeResult
	for _, set := range sets {
		cfg, err := set.ClientConfig()
		if err != nil {
			for _, addr := range set.Addresses {
				for _, g := range groups[set] {
					out = append(out, ProbeResult{ServerSet: set.Name, Server: addr, Chain: g.chain.Name, Route: g.route.Name, Err: err})
				}
			}
			continue
		}
		cfg.Known = append(cfg.Known[:len(cfg.Known):len(cfg.Known)], ocpsmtp.ReceiverURI, ocpsmtp.SenderURI)
		for _, addr := range set.Addresses {
			c, err := ocp.Dial(ctx, addr, cfg)
			if err != nil {
				for _, g := range groups[set] {
					out = append(out, ProbeResult{ServerSet: set.Name, Server: addr, Chain: g.chain.Name, Route: g.route.Name, Err: err})
				}
				continue
			}
			for _, g := range groups[set] {
				r := ProbeResult{ServerSet: set.Name, Server: addr, Chain: g.chain.Name, Route: g.route.Name}
				r.Answer, r.Err = negotiate(ctx, c, addr, g.chain, g.route.Offer())
				out = append(out, r)
			}
			c.Close(ctx, ocp.Result{})
		}
	}
	return out
}

// negotiate creates chain's service group on c with offer and checks the
// answer; a refusal is explained (see refusal). The group is destroyed.
func negotiate(ctx context.Context, c *ocp.Client, addr string, chain *mapping.Chain, offer ocpsmtp.Profile) (ocpsmtp.Profile, error) {
	sg, feat, err := c.NewServiceGroup(ctx, chain.Group, []ocp.Feature{offer.Feature()})
	if err != nil {
		if sg != nil {
			c.DestroyServiceGroup(sg)
		}
		return ocpsmtp.Profile{}, refusal(ctx, c, addr, chain, offer, err)
	}
	defer c.DestroyServiceGroup(sg)
	answer, err := ocpsmtp.ParseProfile(feat)
	if err == nil {
		err = ocpsmtp.CheckAnswer(offer, answer)
	}
	return answer, err
}
