package bridge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opes-milter/opes-milter/mapping"
)

// Metrics are the bridge's Prometheus collectors. A nil *Metrics records
// nothing, so the bridge works without them.
type Metrics struct {
	messages     *prometheus.CounterVec
	failures     *prometheus.CounterVec
	callout      *prometheus.HistogramVec
	breakerOpen  *prometheus.GaugeVec
	breakerTrips *prometheus.CounterVec
	connections  prometheus.Gauge
	sessions     prometheus.Gauge
	sessionsOld  prometheus.Gauge // opes_milter_milter_sessions, deprecated
	transactions prometheus.Gauge
	refusals     *prometheus.CounterVec
	rcptRefusals *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_milter", Name: "messages_total",
			Help: "Messages that reached end of message, by route, verdict (accept, reject, tempfail, discard, quarantine) and trace status (adapted, unadapted, bypassed, skipped, failed).",
		}, []string{"route", "verdict", "status"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_milter", Name: "adaptation_failures_total",
			Help: "Failed adaptations by route, failure class (connect, timeout, protocol, server, local) and the action the policy took.",
		}, []string{"route", "class", "action"}),
		callout: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "opes_milter", Name: "callout_duration_seconds",
			Help:    "Time from the start of an OCP transaction to the callout server's answer at end of message, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 240},
		}, []string{"route"}),
		breakerOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "opes_milter", Name: "circuit_breaker_open",
			Help: "1 while the circuit breaker of a callout server is open.",
		}, []string{"server"}),
		breakerTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_milter", Name: "circuit_breaker_trips_total",
			Help: "Times the circuit breaker of a callout server opened.",
		}, []string{"server"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "opes_milter", Name: "ocp_connections",
			Help: "Open OCP connections to callout servers.",
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "opes_milter", Name: "sessions",
			Help: "MTA connections being served.",
		}),
		sessionsOld: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "opes_milter", Name: "milter_sessions",
			Help: "Deprecated: use opes_milter_sessions (same value); removed in the release after next.",
		}),
		transactions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "opes_milter", Name: "ocp_transactions_in_flight",
			Help: "OCP transactions in flight.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_milter", Name: "overload_refusals_total",
			Help: "Sessions or transactions refused with 451 4.3.2 because a limit was reached, by limit.",
		}, []string{"limit"}),
		rcptRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_milter", Name: "rcpt_refusals_total",
			Help: "Recipients refused at RCPT, by route (empty: none chosen) and verdict (reject, tempfail).",
		}, []string{"route", "verdict"}),
	}
	reg.MustRegister(m.messages, m.failures, m.callout, m.breakerOpen, m.breakerTrips,
		m.connections, m.sessions, m.sessionsOld, m.transactions, m.refusals, m.rcptRefusals)
	for _, limit := range []string{"sessions", "transactions"} {
		m.refusals.WithLabelValues(limit)
	}
	return m
}

// The label values of messages_total.
var (
	messageVerdicts = []string{"accept", "reject", "tempfail", "discard", "quarantine"}
	messageStatuses = []string{"adapted", "unadapted", "bypassed", "skipped", "failed"}
	failureClasses  = []FailureClass{FailConnect, FailTimeout, FailProtocol, FailServer, FailLocal, FailService}
)

// init creates, at 0, every labelled series p can produce, so that a
// query or an alert sees them before the first event: per route
// (and "" for messages no route took) each verdict and trace status,
// each failure class with the action the chain takes for it, RCPT
// refusals; per callout server the breaker.
func (m *Metrics) init(p *Policy) {
	if m == nil {
		return
	}
	routes := []*mapping.Route{nil}
	routes = append(routes, p.Routes...)
	for _, r := range routes {
		name := routeName(r)
		for _, v := range messageVerdicts {
			for _, st := range messageStatuses {
				m.messages.WithLabelValues(name, v, st)
			}
		}
		for _, v := range []string{"reject", "tempfail"} {
			m.rcptRefusals.WithLabelValues(name, v)
		}
		for _, c := range failureClasses {
			actions := []mapping.Action{mapping.TempFail}
			if r != nil {
				actions[0] = r.Chain.OnFailure.For(c)
			}
			if c == FailLocal && actions[0] != mapping.TempFail { // also tempfail whatever the chain says (a spool that fails)
				actions = append(actions, mapping.TempFail)
			}
			for _, a := range actions {
				m.failures.WithLabelValues(name, c.String(), a.String())
			}
		}
		if r == nil {
			continue
		}
		m.callout.WithLabelValues(name)
		for _, addr := range r.Chain.Server.Addresses {
			if isName(addr) {
				continue // its servers get their series when resolved
			}
			m.breakerOpen.WithLabelValues(addr)
			m.breakerTrips.WithLabelValues(addr)
		}
	}
}

func (m *Metrics) rcptRefused(route, verdict string) {
	if m != nil {
		m.rcptRefusals.WithLabelValues(route, verdict).Inc()
	}
}

func (m *Metrics) message(route, verdict, status string) {
	if m != nil {
		m.messages.WithLabelValues(route, verdict, status).Inc()
	}
}

func (m *Metrics) failure(route string, c FailureClass, a mapping.Action) {
	if m != nil {
		m.failures.WithLabelValues(route, c.String(), a.String()).Inc()
	}
}

func (m *Metrics) calloutDone(route string, d time.Duration) {
	if m != nil {
		m.callout.WithLabelValues(route).Observe(d.Seconds())
	}
}

// serversChanged creates, at 0, the breaker series of callout servers
// that DNS discovered, and deletes those of servers it no longer lists,
// so that the series follow the server set as it changes.
func (m *Metrics) serversChanged(added, removed []string) {
	if m == nil {
		return
	}
	for _, addr := range added {
		m.breakerOpen.WithLabelValues(addr)
		m.breakerTrips.WithLabelValues(addr)
	}
	for _, addr := range removed {
		m.breakerOpen.DeleteLabelValues(addr)
		m.breakerTrips.DeleteLabelValues(addr)
	}
}

func (m *Metrics) breaker(server string, open bool) {
	if m == nil {
		return
	}
	if open {
		m.breakerOpen.WithLabelValues(server).Set(1)
		m.breakerTrips.WithLabelValues(server).Inc()
		return
	}
	m.breakerOpen.WithLabelValues(server).Set(0)
}

func (m *Metrics) addConnections(n int) {
	if m != nil {
		m.connections.Add(float64(n))
	}
}

func (m *Metrics) addSessions(n int) {
	if m != nil {
		m.sessions.Add(float64(n))
		m.sessionsOld.Add(float64(n))
	}
}

func (m *Metrics) addTransactions(n int) {
	if m != nil {
		m.transactions.Add(float64(n))
	}
}

func (m *Metrics) refused(limit string) {
	if m != nil {
		m.refusals.WithLabelValues(limit).Inc()
	}
}
