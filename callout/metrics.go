package callout

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// DurationBuckets are the upper bounds, in seconds, of the latency
// histograms.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics counts what the callout server does and exposes it in the
// Prometheus text format (version 0.0.4): transactions by result,
// service calls by service, part and verdict, and latency histograms by
// service and for whole transactions. It is safe for concurrent use; the
// zero value is ready.
type Metrics struct {
	mu       sync.Mutex
	txs      map[string]float64 // by result
	calls    map[[3]string]float64
	callTime map[[2]string]*histogram
	txTime   histogram
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(DurationBuckets))
	}
	for i, b := range DurationBuckets {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += v
	h.n++
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
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls == nil {
		m.calls = make(map[[3]string]float64)
		m.callTime = make(map[[2]string]*histogram)
	}
	m.calls[[3]string{service, string(part), verdict(d, err)}]++
	k := [2]string{service, string(part)}
	h := m.callTime[k]
	if h == nil {
		h = &histogram{}
		m.callTime[k] = h
	}
	h.observe(elapsed.Seconds())
}

// ObserveTransaction counts one transaction that ended with result (ok,
// refused, failed, aborted) after elapsed.
func (m *Metrics) ObserveTransaction(result string, elapsed time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.txs == nil {
		m.txs = make(map[string]float64)
	}
	m.txs[result]++
	m.txTime.observe(elapsed.Seconds())
}

// WriteTo writes the metrics in the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	b.WriteString("# HELP opes_callout_transactions_total OCP transactions served, by result.\n")
	b.WriteString("# TYPE opes_callout_transactions_total counter\n")
	for _, r := range sortedKeys(m.txs) {
		fmt.Fprintf(&b, "opes_callout_transactions_total{result=%s} %s\n", quoteLabel(r), num(m.txs[r]))
	}
	b.WriteString("# HELP opes_callout_transaction_duration_seconds Duration of OCP transactions.\n")
	b.WriteString("# TYPE opes_callout_transaction_duration_seconds histogram\n")
	writeHistogram(&b, "opes_callout_transaction_duration_seconds", "", &m.txTime)
	b.WriteString("# HELP opes_callout_service_calls_total Service calls, by service, part and verdict.\n")
	b.WriteString("# TYPE opes_callout_service_calls_total counter\n")
	keys := make([][3]string, 0, len(m.calls))
	for k := range m.calls {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [3]string) int {
		return strings.Compare(strings.Join(a[:], "\x00"), strings.Join(b[:], "\x00"))
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "opes_callout_service_calls_total{service=%s,part=%s,verdict=%s} %s\n",
			quoteLabel(k[0]), quoteLabel(k[1]), quoteLabel(k[2]), num(m.calls[k]))
	}
	b.WriteString("# HELP opes_callout_service_duration_seconds Duration of service calls, by service and part.\n")
	b.WriteString("# TYPE opes_callout_service_duration_seconds histogram\n")
	hk := make([][2]string, 0, len(m.callTime))
	for k := range m.callTime {
		hk = append(hk, k)
	}
	slices.SortFunc(hk, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	for _, k := range hk {
		writeHistogram(&b, "opes_callout_service_duration_seconds",
			"service="+quoteLabel(k[0])+",part="+quoteLabel(k[1]), m.callTime[k])
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ServeHTTP serves the metrics (for /metrics).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = m.WriteTo(w)
}

func writeHistogram(b *strings.Builder, name, labels string, h *histogram) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, le := range DurationBuckets {
		if h.counts != nil {
			cum += h.counts[i]
		}
		fmt.Fprintf(b, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, num(le), cum)
	}
	fmt.Fprintf(b, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, h.n)
	if labels != "" {
		labels = "{" + labels + "}"
	}
	fmt.Fprintf(b, "%s_sum%s %s\n%s_count%s %d\n", name, labels, num(h.sum), name, labels, h.n)
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// quoteLabel quotes a label value, escaping backslash, quote and newline.
func quoteLabel(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
