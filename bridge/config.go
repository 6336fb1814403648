package bridge

import (
	"github.com/opes-milter/opes-milter/mapping"
)

// PolicyFromConfig returns the Policy of the opes-milter side of a loaded
// configuration. Routes, chains and server sets are the configuration's
// own; the error is a server set whose TLS settings cannot be loaded.
func PolicyFromConfig(c *mapping.Config) (*Policy, error) {
	for _, s := range c.Servers {
		if _, err := s.ClientConfig(); err != nil {
			return nil, err
		}
	}
	return &Policy{
		Routes: c.Routes,
		Select: func(f mapping.Facts) *mapping.Route {
			r, _ := c.Route(f)
			return r
		},
		Skip: func(f mapping.Facts) bool {
			_, ok := c.Skip(f)
			return ok
		},
		NonSMTP:          c.Milter.IsNonSMTP,
		SystemURI:        c.Trace.SystemURI,
		PrivacyURI:       c.Trace.PrivacyURI,
		TraceVia:         c.Trace.Via,
		Bypassable:       c.Bypass.Allows,
		Timeouts:         c.Milter.Timeouts,
		MaxMessageSize:   c.Milter.MaxMessageSize,
		Oversize:         c.Milter.Oversize,
		MaxSessions:      c.Milter.MaxSessions,
		MaxTransactions:  c.Milter.MaxTransactions,
		MaxHeaderBytes:   1 << 20,
		SpoolDir:         c.Milter.SpoolDir,
		SpoolMemory:      int(c.Milter.SpoolMemory),
		QuarantineHeader: c.Milter.QuarantineHeader,
		AnswerLimits:     AnswerLimits(c.Milter.AnswerLimits),
		Resolver:         c.Milter.Resolver,
	}, nil
}
