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
	transactions prometheus.Gauge
	refusals     *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_milter", Name: "messages_total",
			Help: "Messages that reached end of message, by route, verdict (accept, reject, tempfail, discard, quarantine) and trace status (adapted, unadapted, bypassed, skipped).",
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
			Namespace: "opes_milter", Name: "milter_sessions",
			Help: "MTA connections being served.",
		}),
		transactions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "opes_milter", Name: "ocp_transactions_in_flight",
			Help: "OCP transactions in flight.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_milter", Name: "overload_refusals_total",
			Help: "Sessions or transactions refused with 451 4.3.2 because a limit was reached, by limit.",
		}, []string{"limit"}),
	}
	reg.MustRegister(m.messages, m.failures, m.callout, m.breakerOpen, m.breakerTrips,
		m.connections, m.sessions, m.transactions, m.refusals)
	return m
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
