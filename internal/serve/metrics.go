package serve

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets are the upper bounds, in seconds, of the latency
// histograms: from a /healthz answer to a long agent trajectory of a large
// model on a CPU.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// batchBuckets are the upper bounds of the batch size histogram.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128}

// metrics holds what GET /metrics shows, in a registry of the server's
// own, beside the Go runtime and process collectors.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	firstToken *prometheus.HistogramVec
	batchSize  *prometheus.HistogramVec
	batchTime  *prometheus.HistogramVec
	handler    http.Handler
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ssp_serve_requests_total", Help: "HTTP requests answered, by path and status code.",
		}, []string{"path", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ssp_serve_request_duration_seconds", Help: "Time from a request's arrival to the end of its answer (the last streamed event).", Buckets: latencyBuckets,
		}, []string{"path"}),
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ssp_serve_time_to_first_token_seconds", Help: "Time from a completion request's admission to its first text.", Buckets: latencyBuckets,
		}, []string{"model"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ssp_serve_batch_requests", Help: "Requests decoded together in one batch, by kind (chat or agent).", Buckets: batchBuckets,
		}, []string{"model", "kind"}),
		batchTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ssp_serve_batch_duration_seconds", Help: "Time to run one batch, by kind (chat or agent).", Buckets: latencyBuckets,
		}, []string{"model", "kind"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.firstToken, m.batchSize, m.batchTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// addModel registers the gauges and counters read from a model at every
// scrape.
func (m *metrics) addModel(md *Model) {
	labels := prometheus.Labels{"model": md.Name()}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ssp_serve_generated_tokens_total", Help: "Tokens sampled by the model, for chat completions and agent trajectories.", ConstLabels: labels,
		}, func() float64 { return float64(md.generatedTokens.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ssp_serve_searches_total", Help: "Search calls made by the model's agent.", ConstLabels: labels,
		}, func() float64 { return float64(md.searches.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ssp_serve_tokens_per_second", Help: "Tokens sampled per second over the model's last batch, all its requests together.", ConstLabels: labels,
		}, func() float64 { return math.Float64frombits(md.lastRate.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ssp_serve_queue_depth", Help: "Admitted requests waiting for the model's next batch.", ConstLabels: labels,
		}, func() float64 { return float64(md.QueueDepth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ssp_serve_running_requests", Help: "Requests in the model's batch in progress.", ConstLabels: labels,
		}, func() float64 { return float64(md.running.Load()) }),
	)
	md.metrics = m
}

// metricPath keeps the label set small: any path the server does not
// serve is counted as "other", so scanners cannot grow the metrics.
func metricPath(p string) string {
	switch p {
	case "/v1/chat/completions", "/v1/models", "/healthz", "/metrics", "/":
		return p
	}
	if len(p) > len("/v1/models/") && p[:len("/v1/models/")] == "/v1/models/" {
		return "/v1/models/{model}"
	}
	return "other"
}

func (m *metrics) observeRequest(path string, code int, d time.Duration) {
	path = metricPath(path)
	m.requests.WithLabelValues(path, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(path).Observe(d.Seconds())
}

func (m *metrics) observeFirstToken(model string, d time.Duration) {
	if m != nil {
		m.firstToken.WithLabelValues(model).Observe(d.Seconds())
	}
}

func (m *metrics) observeBatch(model string, agentBatch bool, requests int, d time.Duration) {
	if m == nil {
		return
	}
	kind := "chat"
	if agentBatch {
		kind = "agent"
	}
	m.batchSize.WithLabelValues(model, kind).Observe(float64(requests))
	m.batchTime.WithLabelValues(model, kind).Observe(d.Seconds())
}
