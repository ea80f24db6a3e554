package search

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histogram: from a cache-hot BM25 lookup to a stalled dense retriever.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// serverMetrics holds the metrics behind GET /metrics in a registry of its
// own (each Server has one), exposed by the Prometheus client library with
// the Go runtime and process collectors beside the server's own.
type serverMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

// newServerMetrics registers the server's metrics; queued and inFlight are
// read at every scrape.
func newServerMetrics(queued, inFlight func() float64) *serverMetrics {
	reg := prometheus.NewRegistry()
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ssp_search_requests_total", Help: "HTTP requests answered, by path and status code.",
		}, []string{"path", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ssp_search_request_duration_seconds", Help: "Time to answer an HTTP request.", Buckets: latencyBuckets,
		}, []string{"path"}),
	}
	reg.MustRegister(m.requests, m.duration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ssp_search_queue_depth", Help: "Retrieve requests admitted and waiting for a search slot.",
		}, queued),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ssp_search_in_flight", Help: "Retrieve requests being searched now.",
		}, inFlight),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// metricPath keeps the label set small: any path the server does not serve
// is counted as "other", so scanners cannot grow the metrics without bound.
func metricPath(p string) string {
	switch p {
	case "/retrieve", "/status", "/healthz", "/metrics":
		return p
	}
	return "other"
}

func (m *serverMetrics) observe(path string, code int, d time.Duration) {
	path = metricPath(path)
	m.requests.WithLabelValues(path, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(path).Observe(d.Seconds())
}
