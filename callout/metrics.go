package callout

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_callout", Name: "transactions_total",
			Help: "OCP transactions by result (ok, refused, failed, aborted).",
		}, []string{"result"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "opes_callout", Name: "service_calls_total",
			Help: "Service calls by service URI, part and verdict (keep, replace, reject, tempfail, error).",
		}, []string{"service", "part", "verdict"}),
		callTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "opes_callout", Name: "service_duration_seconds",
			Help: "Time a service took for one part, by service URI and part.", Buckets: DurationBuckets,
		}, []string{"service", "part"}),
		txTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "opes_callout", Name: "transaction_duration_seconds",
			Help: "Time from TS to the end of a transaction.", Buckets: DurationBuckets,
		}),
	}
	reg.MustRegister(m.txs, m.calls, m.callTime, m.txTime)
	return m
}

// verdict names a decision for the metrics: keep, replace, tempfail,
// reject or error.
func verdict(d Decision, err error) string {
	switch {
	case err != nil:
		return "error"
	case d.Action == ActionRefuse && d.Reply.Temporary():
		return "tempfail"
	case d.Action == ActionRefuse:
		return "reject"
	}
	return d.Action.String()
}

// ObserveCall implements Observer.
func (m *Metrics) ObserveCall(service string, part ocpsmtp.Part, d Decision, err error, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(service, string(part), verdict(d, err)).Inc()
	m.callTime.WithLabelValues(service, string(part)).Observe(elapsed.Seconds())
}

// ObserveTransaction counts one transaction that ended with result (ok,
// refused, failed, aborted) after elapsed.
func (m *Metrics) ObserveTransaction(result string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.txs.WithLabelValues(result).Inc()
	m.txTime.Observe(elapsed.Seconds())
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
