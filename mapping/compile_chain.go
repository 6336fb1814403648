package mapping

import "github.com/opes-milter/opes-milter/ocp"

func (b *builder) servers(raw map[string]rawServer) {
	for _, name := range sortedKeys(raw) {
		r, key := raw[name], joinPath("servers", name)
		s := &ServerSet{
			Name:             name,
			Strategy:         r.Strategy,
			Connections:      r.Connections,
			ConnectTimeout:   b.positive(joinPath(key, "connect_timeout"), r.ConnectTimeout),
			HandshakeTimeout: b.positive(joinPath(key, "handshake_timeout"), r.HandshakeTimeout),
			IdleTimeout:      b.positive(joinPath(key, "idle_timeout"), r.IdleTimeout),
			FailureLimit:     r.FailureLimit,
			RevivalDelay:     b.positive(joinPath(key, "revival_delay"), r.RevivalDelay),
			ResolveInterval:  b.positive(joinPath(key, "resolve_interval"), r.ResolveInterval),
		}
		if len(r.Addresses) == 0 {
			b.errorf(ErrMissing, joinPath(key, "addresses"), `needs at least one callout server address, like ["127.0.0.1:8891"]`)
		}
		s.Addresses = b.hostPorts(joinPath(key, "addresses"), "addresses", r.Addresses, true)
		b.atLeast(joinPath(key, "connections"), r.Connections, 1)
		b.atLeast(joinPath(key, "failure_limit"), r.FailureLimit, 1)
		s.TLS = b.tls(joinPath(key, "tls"), r.TLS, false)
		b.cfg.Servers = append(b.cfg.Servers, s)
	}
}

// tls compiles a TLS table: client side for a server set, server side for
// the opes-callout listener. The certificate files are read now, so a
// missing or broken file is a configuration error.
func (b *builder) tls(key string, r *rawTLS, server bool) *TLS {
	if r == nil || !r.Enabled {
		return nil
	}
	t := &TLS{CAFile: r.CAFile, CertFile: r.CertFile, KeyFile: r.KeyFile, ServerName: r.ServerName, InsecureSkipVerify: r.InsecureSkipVerify}
	switch {
	case server && r.CertFile == "":
		b.errorf(ErrMissing, joinPath(key, "cert_file"), "a TLS listener needs a certificate (cert_file and key_file)")
	case r.CertFile != "" && r.KeyFile == "":
		b.errorf(ErrMissing, joinPath(key, "key_file"), "cert_file needs key_file")
	case r.CertFile == "" && r.KeyFile != "":
		b.errorf(ErrMissing, joinPath(key, "cert_file"), "key_file needs cert_file")
	case r.CertFile != "":
		if _, err := loadKeyPair(r.CertFile, r.KeyFile); err != nil {
			b.errorf(ErrValue, joinPath(key, "cert_file"), "%v", err)
		}
	}
	if r.CAFile != "" {
		if _, err := loadPool(r.CAFile); err != nil {
			b.errorf(ErrValue, joinPath(key, "ca_file"), "%v", err)
		}
	}
	if server && r.ServerName != "" {
		b.errorf(ErrValue, joinPath(key, "server_name"), "only for connecting to a callout server")
	}
	if server && r.InsecureSkipVerify {
		b.errorf(ErrValue, joinPath(key, "insecure_skip_verify"), "only for connecting to a callout server")
	}
	if r.ServerName != "" {
		if err := checkHost(r.ServerName); err != nil {
			b.errorf(ErrValue, joinPath(key, "server_name"), "%v", err)
		}
	}
	if r.InsecureSkipVerify && r.CAFile != "" {
		b.errorf(ErrConflict, joinPath(key, "insecure_skip_verify"), "turns off the verification ca_file is for; set one of them")
	}
	return t
}

func (b *builder) services(raw map[string]rawService) {
	for _, name := range sortedKeys(raw) {
		r, key := raw[name], joinPath("services", name)
		if r.URI == "" {
			b.errorf(ErrMissing, joinPath(key, "uri"), "required: the service ID sent to the callout server")
		} else {
			b.uri(joinPath(key, "uri"), r.URI)
		}
		b.cfg.Services = append(b.cfg.Services, &Service{Name: name, URI: r.URI, Params: r.Params})
	}
}

func (b *builder) chains(raw map[string]rawChain) {
	services := make(map[string]*Service)
	for _, s := range b.cfg.Services {
		services[s.Name] = s
	}
	servers := make(map[string]*ServerSet)
	for _, s := range b.cfg.Servers {
		servers[s.Name] = s
	}
	for _, name := range sortedKeys(raw) {
		r, key := raw[name], joinPath("chains", name)
		c := &Chain{Name: name, OnFailure: FailurePolicy{
			Connect: Action(r.OnFailure.Connect), Timeout: Action(r.OnFailure.Timeout),
			Protocol: Action(r.OnFailure.Protocol), Server: Action(r.OnFailure.Server),
		}}
		if len(r.Services) == 0 {
			b.errorf(ErrMissing, joinPath(key, "services"), "needs at least one service")
		}
		seen := make(map[string]int)
		for i, sn := range r.Services {
			skey := indexPath(joinPath(key, "services"), i)
			s, ok := services[sn]
			switch j, dup := seen[sn]; {
			case !ok:
				b.errorf(ErrReference, skey, "no service %q (%s)", sn, defined("service", services))
			case dup:
				b.errorf(ErrConflict, skey, "%q is also services[%d]", sn, j)
			default:
				seen[sn] = i
				c.Services = append(c.Services, s)
				c.Group = append(c.Group, ocp.Service{URI: s.URI, Params: serviceParams(s.Params)})
			}
		}
		c.Server = b.chainServer(key, r.Server, servers)
		b.cfg.Chains = append(b.cfg.Chains, c)
	}
}

// chainServer resolves a chain's server set; it may be left out when
// there is only one.
func (b *builder) chainServer(key, name string, servers map[string]*ServerSet) *ServerSet {
	if name == "" {
		if len(servers) == 1 {
			for _, s := range servers {
				return s
			}
		}
		b.errorf(ErrMissing, joinPath(key, "server"), "required when there is not exactly one server set (%s)", defined("server set", servers))
		return nil
	}
	s, ok := servers[name]
	if !ok {
		b.errorf(ErrReference, joinPath(key, "server"), "no server set %q (%s)", name, defined("server set", servers))
	}
	return s
}

// serviceParams returns a service's parameters as sent in SGC, sorted by
// name.
func serviceParams(m map[string]string) []ocp.Param {
	out := make([]ocp.Param, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, ocp.NewParam(k, ocp.Atom(m[k])))
	}
	return out
}
