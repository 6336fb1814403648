// Package promobserver counts what a callout server does as Prometheus
// collectors: a callout.Observer for Server.Observer. It lives apart from
// package callout so that a service author who wants no metrics does not
// depend on Prometheus.
package promobserver

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// DurationBuckets are the upper bounds, in seconds, of the latency
// histograms.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics counts what the callout server does, as Prometheus collectors:
// transactions by result, service calls by service, part and verdict, and
// latency histograms by service and for whole transactions. A nil
// *Metrics records nothing.
type Metrics struct {
	txs      *prometheus.CounterVec
	calls    *prometheus.CounterVec
	callTime *prometheus.HistogramVec
	txTime   prometheus.Histogram
	up       *prometheus.GaugeVec
	// names maps a service URI to its configured name, the service
	// label (see SetServices).
	names atomic.Pointer[map[string]string]
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_callout", Name: "transactions_total",
			Help: "OCP transactions by result (ok, refused, failed, aborted).",
		}, []string{"result"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_callout", Name: "service_calls_total",
			Help: "Service calls by service (its configured name), part and verdict (keep, replace, reject, tempfail, error).",
		}, []string{"service", "part", "verdict"}),
		callTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "opes_callout", Name: "service_duration_seconds",
			Help: "Time a service took for one part, by service (its configured name) and part.", Buckets: DurationBuckets,
		}, []string{"service", "part"}),
		txTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "opes_callout", Name: "transaction_duration_seconds",
			Help: "Time from TS to the end of a transaction.", Buckets: DurationBuckets,
		}),
	}
	m.up = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "opes_callout", Name: "backend_up",
		Help: "1 while the backend (scanner) of a service answers its health check, 0 while it is down, by service (its configured name) and backend.",
	}, []string{"service", "backend"})
	reg.MustRegister(m.txs, m.calls, m.callTime, m.txTime, m.up)
	for _, r := range []string{"ok", "refused", "failed", "aborted"} {
		m.txs.WithLabelValues(r)
	}
	return m
}

// callVerdicts are the verdict label values of service_calls_total.
var callVerdicts = []string{"keep", "replace", "reject", "tempfail", "error"}

// SetServices names the services for the service label (services maps
// URIs to services, names URIs to configured names; a URI without a name
// is its own label) and creates, at 0, the series of every part each
// service is called for (MAIL, RCPT, RAWDATA by the adapter interfaces it
// implements) and every verdict. Call it again after a reload.
func (m *Metrics) SetServices(services map[string]callout.Service, names map[string]string) {
	if m == nil {
		return
	}
	cp := make(map[string]string, len(names))
	for k, v := range names {
		cp[k] = v
	}
	m.names.Store(&cp)
	uris := make([]string, 0, len(services))
	for uri := range services {
		uris = append(uris, uri)
	}
	slices.Sort(uris)
	for _, uri := range uris {
		name := m.label(uri)
		s := services[uri]
		var parts []ocpsmtp.Part
		if _, ok := s.(callout.MailAdapter); ok {
			parts = append(parts, ocpsmtp.PartMAIL)
		}
		if _, ok := s.(callout.RcptAdapter); ok {
			parts = append(parts, ocpsmtp.PartRCPT)
		}
		if _, ok := s.(callout.MessageAdapter); ok {
			parts = append(parts, ocpsmtp.PartRAWDATA)
		}
		for _, p := range parts {
			for _, v := range callVerdicts {
				m.calls.WithLabelValues(name, string(p), v)
			}
			m.callTime.WithLabelValues(name, string(p))
		}
	}
}

// label is the service label of uri: its configured name.
func (m *Metrics) label(uri string) string {
	if n := m.names.Load(); n != nil {
		if name, ok := (*n)[uri]; ok && name != "" {
			return name
		}
	}
	return uri
}

// ObserveCall implements callout.Observer.
func (m *Metrics) ObserveCall(service string, part ocpsmtp.Part, d callout.Decision, err error, elapsed time.Duration) {
	if m == nil {
		return
	}
	name := m.label(service)
	m.calls.WithLabelValues(name, string(part), callout.Verdict(d, err)).Inc()
	m.callTime.WithLabelValues(name, string(part)).Observe(elapsed.Seconds())
}

// ObserveTransaction implements callout.Observer: one transaction that
// ended with result (ok, refused, failed, aborted) after elapsed.
func (m *Metrics) ObserveTransaction(result string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.txs.WithLabelValues(result).Inc()
	m.txTime.Observe(elapsed.Seconds())
}

// ObserveBackends implements callout.HealthObserver: the backend_up
// gauges are set to what a health check found.
func (m *Metrics) ObserveBackends(health map[string][]callout.BackendHealth) {
	if m == nil {
		return
	}
	m.up.Reset()
	for uri, hs := range health {
		for _, h := range hs {
			v := 0.0
			if h.Up {
				v = 1
			}
			m.up.WithLabelValues(m.label(uri), h.Name).Set(v)
		}
	}
}

var (
	_ callout.Observer       = (*Metrics)(nil)
	_ callout.HealthObserver = (*Metrics)(nil)
)
