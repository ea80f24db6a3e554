package search

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histogram: from a cache-hot BM25 lookup to a stalled dense retriever.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// serverMetrics holds the counters behind GET /metrics, written in the
// Prometheus text exposition format without any client library.
type serverMetrics struct {
	mu       sync.Mutex
	requests map[requestKey]uint64
	buckets  map[string][]uint64 // per path, cumulative counts per latencyBuckets bound
	count    map[string]uint64
	sum      map[string]float64
}

type requestKey struct {
	path string
	code int
}

func newServerMetrics() *serverMetrics {
	return &serverMetrics{
		requests: map[requestKey]uint64{},
		buckets:  map[string][]uint64{},
		count:    map[string]uint64{},
		sum:      map[string]float64{},
	}
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
	sec := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{path, code}]++
	b := m.buckets[path]
	if b == nil {
		b = make([]uint64, len(latencyBuckets))
		m.buckets[path] = b
	}
	for i, bound := range latencyBuckets {
		if sec <= bound {
			b[i]++
		}
	}
	m.count[path]++
	m.sum[path] += sec
}

func (m *serverMetrics) write(w io.Writer, queued, inFlight int64) {
	m.mu.Lock()
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].path != keys[j].path {
			return keys[i].path < keys[j].path
		}
		return keys[i].code < keys[j].code
	})
	fmt.Fprintln(w, "# HELP ssp_search_requests_total HTTP requests answered, by path and status code.")
	fmt.Fprintln(w, "# TYPE ssp_search_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "ssp_search_requests_total{path=%q,code=\"%d\"} %d\n", k.path, k.code, m.requests[k])
	}
	paths := make([]string, 0, len(m.count))
	for p := range m.count {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	fmt.Fprintln(w, "# HELP ssp_search_request_duration_seconds Time to answer an HTTP request.")
	fmt.Fprintln(w, "# TYPE ssp_search_request_duration_seconds histogram")
	for _, p := range paths {
		for i, bound := range latencyBuckets {
			fmt.Fprintf(w, "ssp_search_request_duration_seconds_bucket{path=%q,le=\"%g\"} %d\n", p, bound, m.buckets[p][i])
		}
		fmt.Fprintf(w, "ssp_search_request_duration_seconds_bucket{path=%q,le=\"+Inf\"} %d\n", p, m.count[p])
		fmt.Fprintf(w, "ssp_search_request_duration_seconds_sum{path=%q} %g\n", p, m.sum[p])
		fmt.Fprintf(w, "ssp_search_request_duration_seconds_count{path=%q} %d\n", p, m.count[p])
	}
	m.mu.Unlock()
	fmt.Fprintln(w, "# HELP ssp_search_queue_depth Retrieve requests admitted and waiting for a search slot.")
	fmt.Fprintln(w, "# TYPE ssp_search_queue_depth gauge")
	fmt.Fprintf(w, "ssp_search_queue_depth %d\n", queued)
	fmt.Fprintln(w, "# HELP ssp_search_in_flight Retrieve requests being searched now.")
	fmt.Fprintln(w, "# TYPE ssp_search_in_flight gauge")
	fmt.Fprintf(w, "ssp_search_in_flight %d\n", inFlight)
}
