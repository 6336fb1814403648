package cli

import "github.com/prometheus/client_golang/prometheus"

// BuildInfo returns the gauge NAMESPACE_build_info, always 1, whose
// labels are the version, VCS revision and Go version of the binary.
func BuildInfo(namespace string) prometheus.Collector {
	b := ReadBuild()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels are the version, VCS revision and Go version of the running binary.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}
