package bridge

import (
	"strings"

	"github.com/opes-milter/opes-milter/mapping"
)

// The fields of the one line per message (logSummary) that both daemons
// share: qid (the MTA's queue id), ocp_tx (the OCP transaction, named as
// opes-callout names it), message_id, services by their configured names,
// rcpts (accepted) and rcpts_refused, duration; a field that is not known
// is left out, never logged empty.

// messageFields returns the identifying fields of the current message.
func (s *session) messageFields(qid string) []any {
	mt := s.mt
	var attrs []any
	if qid != "" {
		attrs = append(attrs, "qid", qid)
	}
	if mt == nil {
		return attrs
	}
	if key := mt.x.ocpKey(); key != "" {
		attrs = append(attrs, "ocp_tx", key)
	}
	if id := strings.TrimSpace(mt.header("Message-ID")); id != "" {
		attrs = append(attrs, "message_id", id)
	}
	if mt.route != nil {
		attrs = append(attrs, "route", mt.route.Name)
	}
	return attrs
}

// recipientFields returns rcpts (accepted) and, when any, rcpts_refused.
func (mt *mailTx) recipientFields() []any {
	refused := 0
	for _, r := range mt.rcpts {
		if r.refused {
			refused++
		}
	}
	attrs := []any{"rcpts", len(mt.rcpts) - refused}
	if refused > 0 {
		attrs = append(attrs, "rcpts_refused", refused)
	}
	return attrs
}

// serviceNames returns the configured names of the service URIs of the
// route's chain, in order (a URI without a name stays as it is).
func serviceNames(r *mapping.Route, uris []string) string {
	names := make([]string, len(uris))
	for i, u := range uris {
		names[i] = u
		if r == nil {
			continue
		}
		for _, svc := range r.Chain.Services {
			if svc.URI == u && svc.Name != "" {
				names[i] = svc.Name
				break
			}
		}
	}
	return strings.Join(names, " ")
}
