package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// overlapSearcher scores a document by how many query words its contents hold.
type overlapSearcher struct{ docs []Document }

func (s overlapSearcher) Search(ctx context.Context, queries []string, topK int) ([][]Hit, error) {
	out := make([][]Hit, len(queries))
	for i, q := range queries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		words := strings.Fields(strings.ToLower(q))
		var hits []Hit
		for _, d := range s.docs {
			text := strings.ToLower(d.Contents)
			score := 0.0
			for _, w := range words {
				if strings.Contains(text, w) {
					score++
				}
			}
			if score > 0 {
				hits = append(hits, Hit{Document: d, Score: score})
			}
		}
		sort.SliceStable(hits, func(a, b int) bool { return hits[a].Score > hits[b].Score })
		out[i] = hits[:min(topK, len(hits))]
	}
	return out, nil
}

var testDocs = []Document{
	{ID: "0", Contents: "\"Paris\"\nParis is the capital of France."},
	{ID: "1", Contents: "\"Berlin\"\nBerlin is the capital of Germany."},
	{ID: "2", Contents: "\"Rome\"\nRome is the capital city of Italy."},
}

func newTestServer(t testing.TB, s Searcher, mutate func(*ServerConfig)) *Server {
	t.Helper()
	cfg := DefaultServerConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := NewServer(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func do(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRetrieveWithScores(t *testing.T) {
	srv := newTestServer(t, overlapSearcher{testDocs}, nil)
	rec := do(t, srv, "POST", "/retrieve", `{"queries":["capital of France","capital of Italy"],"topk":2,"return_scores":true}`)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp struct {
		Result [][]struct {
			Document map[string]string `json:"document"`
			Score    *float64          `json:"score"`
		} `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Result) != 2 || len(resp.Result[0]) != 2 {
		t.Fatalf("shape: %s", rec.Body)
	}
	first := resp.Result[0][0]
	if first.Document["id"] != "0" || first.Document["contents"] != testDocs[0].Contents || first.Score == nil || *first.Score != 3 {
		t.Errorf("first hit of query 0 = %+v, want doc 0 with score 3", first)
	}
	if got := resp.Result[1][0].Document["id"]; got != "2" {
		t.Errorf("first hit of query 1 = %q, want 2", got)
	}
}

func TestRetrieveWithoutScores(t *testing.T) {
	srv := newTestServer(t, overlapSearcher{testDocs}, nil)
	// return_scores missing means false, as in Search-R1; topk missing means the default (3).
	rec := do(t, srv, "POST", "/retrieve", `{"queries":["capital"]}`)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp struct {
		Result [][]map[string]any `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Result) != 1 || len(resp.Result[0]) != 3 {
		t.Fatalf("want 1 list of 3 documents, got %s", rec.Body)
	}
	for _, d := range resp.Result[0] {
		if _, ok := d["score"]; ok {
			t.Errorf("document has a score: %v", d)
		}
		if _, ok := d["contents"].(string); !ok {
			t.Errorf("document has no contents: %v", d)
		}
	}
}

func TestRetrieveNoHitsIsEmptyList(t *testing.T) {
	srv := newTestServer(t, overlapSearcher{testDocs}, nil)
	rec := do(t, srv, "POST", "/retrieve", `{"queries":["zzz"],"return_scores":true}`)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"result":[[]]}` {
		t.Errorf("got %d %s, want {\"result\":[[]]}", rec.Code, rec.Body)
	}
}

func TestBadRequests(t *testing.T) {
	srv := newTestServer(t, overlapSearcher{testDocs}, func(c *ServerConfig) {
		c.MaxQueries = 2
		c.MaxTopK = 10
		c.MaxBodyBytes = 200
	})
	tests := []struct {
		name, method, path, body string
		code                     int
		mention                  string
	}{
		{"empty body", "POST", "/retrieve", ``, 400, "empty"},
		{"not json", "POST", "/retrieve", `{queries:`, 400, "invalid JSON"},
		{"array body", "POST", "/retrieve", `[]`, 400, "object"},
		{"trailing data", "POST", "/retrieve", `{"queries":["a"]} {}`, 400, "after"},
		{"missing queries", "POST", "/retrieve", `{"topk":3}`, 400, `"queries"`},
		{"null queries", "POST", "/retrieve", `{"queries":null}`, 400, `"queries"`},
		{"queries a string", "POST", "/retrieve", `{"queries":"paris"}`, 400, `"queries"`},
		{"query a number", "POST", "/retrieve", `{"queries":[1]}`, 400, `queries`},
		{"query null", "POST", "/retrieve", `{"queries":["a",null]}`, 400, `"queries"[1]`},
		{"empty queries", "POST", "/retrieve", `{"queries":[]}`, 400, `"queries"`},
		{"too many queries", "POST", "/retrieve", `{"queries":["a","b","c"]}`, 400, `at most 2`},
		{"topk zero", "POST", "/retrieve", `{"queries":["a"],"topk":0}`, 400, `"topk"`},
		{"topk negative", "POST", "/retrieve", `{"queries":["a"],"topk":-1}`, 400, `"topk"`},
		{"topk too big", "POST", "/retrieve", `{"queries":["a"],"topk":11}`, 400, `"topk"`},
		{"topk huge", "POST", "/retrieve", `{"queries":["a"],"topk":1e400}`, 400, `"topk"`},
		{"topk fraction", "POST", "/retrieve", `{"queries":["a"],"topk":2.5}`, 400, `"topk"`},
		{"topk string", "POST", "/retrieve", `{"queries":["a"],"topk":"3"}`, 400, `"topk"`},
		{"return_scores string", "POST", "/retrieve", `{"queries":["a"],"return_scores":"yes"}`, 400, `"return_scores"`},
		{"body too big", "POST", "/retrieve", `{"queries":["` + strings.Repeat("x", 300) + `"]}`, 413, "larger than 200"},
		{"GET retrieve", "GET", "/retrieve", ``, 405, "POST"},
		{"POST status", "POST", "/status", ``, 405, "GET"},
		{"unknown path", "GET", "/search", ``, 404, "/retrieve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, srv, tt.method, tt.path, tt.body)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not a JSON error", rec.Body)
			}
			if !strings.Contains(e.Error, tt.mention) {
				t.Errorf("error %q does not mention %q", e.Error, tt.mention)
			}
		})
	}
}

// searchR1Body is what Search-R1's rollout (_batch_search in
// search_r1/llm_agent/generation.py) posts: every active query of the
// batch in one request, encoded by Python's json.dumps (", " and ": "
// separators, non-ASCII escaped).
func searchR1Body(queries []string, topK int) string {
	quoted := make([]string, len(queries))
	for i, q := range queries {
		b, _ := json.Marshal(q)
		quoted[i] = string(b)
	}
	return fmt.Sprintf(`{"queries": [%s], "topk": %d, "return_scores": true}`, strings.Join(quoted, ", "), topK)
}

// TestSearchR1GRPOBatch sends the batch of Search-R1's train_grpo.sh — 512
// prompts × 5 rollouts, all searching in the same turn — to a server with
// the default limits, over HTTP.
func TestSearchR1GRPOBatch(t *testing.T) {
	queries := make([]string, 512*5)
	for i := range queries {
		// Queries as long as a verbose model writes them.
		queries[i] = fmt.Sprintf("which city is the capital of france and who founded it, question %d of the batch, rollout %d", i/5, i%5)
	}
	body := searchR1Body(queries, 3)
	srv := httptest.NewServer(newTestServer(t, overlapSearcher{testDocs}, nil))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/retrieve", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("%d queries in %d bytes: status %d: %s", len(queries), len(body), resp.StatusCode, msg)
	}
	var out struct {
		Result [][]struct {
			Document Document `json:"document"`
			Score    float64  `json:"score"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Result) != len(queries) {
		t.Fatalf("%d results for %d queries", len(out.Result), len(queries))
	}
	for i, r := range out.Result {
		if len(r) != 3 || r[0].Document.ID != "0" {
			t.Fatalf("result %d: %+v, want 3 hits, Paris first", i, r)
		}
	}
}

// TestQueryLimitFollowsMemory checks that a request beyond what the
// request memory admits at its topk is refused with the limit and the
// flag that sets it, and that the same queries at a smaller topk pass.
func TestQueryLimitFollowsMemory(t *testing.T) {
	srv := newTestServer(t, overlapSearcher{testDocs}, func(c *ServerConfig) { c.RequestMemory = 100 * HitBytes })
	queries := make([]string, 40)
	for i := range queries {
		queries[i] = "paris"
	}
	if rec := do(t, srv, "POST", "/retrieve", searchR1Body(queries, 2)); rec.Code != 200 {
		t.Errorf("40 queries at topk 2 within 100 hits: status %d: %s", rec.Code, rec.Body)
	}
	rec := do(t, srv, "POST", "/retrieve", searchR1Body(queries, 3))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "at most 33 allowed") || !strings.Contains(rec.Body.String(), "--request-memory") {
		t.Errorf("40 queries at topk 3 beyond 100 hits: status %d: %s", rec.Code, rec.Body)
	}
	if got := DefaultServerConfig().QueryLimit(3); got < 512*5 {
		t.Errorf("default limit at topk 3 is %d queries, below Search-R1's GRPO batch of 2560", got)
	}
}

func TestUnknownFieldsAndNullTopKAccepted(t *testing.T) {
	srv := newTestServer(t, overlapSearcher{testDocs}, nil)
	rec := do(t, srv, "POST", "/retrieve", `{"queries":["paris"],"topk":null,"return_scores":true,"extra":{"a":1}}`)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

func TestStatusHealthzMetrics(t *testing.T) {
	srv := newTestServer(t, overlapSearcher{testDocs}, nil)
	for _, p := range []string{"/status", "/healthz"} {
		rec := do(t, srv, "GET", p, "")
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `"ok"` {
			t.Errorf("%s: %d %q, want 200 \"ok\"", p, rec.Code, rec.Body)
		}
	}
	do(t, srv, "POST", "/retrieve", `{"queries":["paris"]}`)
	do(t, srv, "POST", "/retrieve", `{"queries":[]}`)
	do(t, srv, "GET", "/nope", "")
	rec := do(t, srv, "GET", "/metrics", "")
	// The exposition must parse as the Prometheus text format.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v\n%s", err, rec.Body)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			return -1
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
		t.Errorf("metric %s%v missing", name, labels)
		return -1
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ssp_search_requests_total", map[string]string{"path": "/retrieve", "code": "200"}, 1},
		{"ssp_search_requests_total", map[string]string{"path": "/retrieve", "code": "400"}, 1},
		{"ssp_search_requests_total", map[string]string{"path": "other", "code": "404"}, 1},
		{"ssp_search_requests_total", map[string]string{"path": "/status", "code": "200"}, 1},
		{"ssp_search_request_duration_seconds", map[string]string{"path": "/retrieve"}, 2},
		{"ssp_search_queue_depth", nil, 0},
		{"ssp_search_in_flight", nil, 0},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The Go runtime and process collectors come with the client library.
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := families[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
}

type panicSearcher struct{}

func (panicSearcher) Search(context.Context, []string, int) ([][]Hit, error) { panic("boom") }

type errSearcher struct{ n int }

func (e errSearcher) Search(_ context.Context, q []string, _ int) ([][]Hit, error) {
	if e.n >= 0 {
		return make([][]Hit, e.n), nil
	}
	return nil, errors.New("disk on fire")
}

func TestSearcherFailuresAre500JSON(t *testing.T) {
	for name, s := range map[string]Searcher{
		"panic":        panicSearcher{},
		"error":        errSearcher{-1},
		"wrong length": errSearcher{5},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, s, nil)
			rec := do(t, srv, "POST", "/retrieve", `{"queries":["a"]}`)
			var e struct{ Error string }
			if rec.Code != 500 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Errorf("got %d %q, want 500 with a JSON error", rec.Code, rec.Body)
			}
		})
	}
}

// blockingSearcher holds every search until release is closed.
type blockingSearcher struct {
	started chan struct{}
	release chan struct{}
}

func (b blockingSearcher) Search(ctx context.Context, q []string, _ int) ([][]Hit, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return make([][]Hit, len(q)), nil
}

func TestOverloadIs503(t *testing.T) {
	bs := blockingSearcher{started: make(chan struct{}, 10), release: make(chan struct{})}
	srv := newTestServer(t, bs, func(c *ServerConfig) { c.Concurrency = 1; c.Queue = 1 })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	post := func() (*http.Response, error) {
		return http.Post(ts.URL+"/retrieve", "application/json", strings.NewReader(`{"queries":["a"]}`))
	}
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := post()
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-bs.started // one searching
	// Wait until the second is queued.
	deadline := time.Now().Add(5 * time.Second)
	for srv.waiting.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	resp, err := post()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request: %d Retry-After=%q %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	mrec := do(t, srv, "GET", "/metrics", "")
	if !strings.Contains(mrec.Body.String(), "ssp_search_queue_depth 1") || !strings.Contains(mrec.Body.String(), "ssp_search_in_flight 1") {
		t.Errorf("metrics during overload:\n%s", mrec.Body)
	}
	close(bs.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("admitted request got %d, want 200", c)
		}
	}
}

func TestGracefulShutdown(t *testing.T) {
	bs := blockingSearcher{started: make(chan struct{}, 1), release: make(chan struct{})}
	srv := newTestServer(t, bs, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()

	got := make(chan int, 1)
	go func() {
		resp, err := http.Post(url+"/retrieve", "application/json", strings.NewReader(`{"queries":["a"]}`))
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-bs.started
	cancel()
	// Shutdown must wait for the request in flight.
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v before the request in flight finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(bs.release)
	if code := <-got; code != 200 {
		t.Errorf("request in flight during shutdown got %d, want 200", code)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := http.Get(url + "/status"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

// TestShutdownDrainsKeepAlive keeps a client's connection alive across a
// shutdown: a request sent on it after the shutdown began is answered, with
// "Connection: close", instead of meeting a closed connection; a request in
// flight gets the same header; and Serve returns as soon as the clients
// have closed their connections, well before the drain timeout.
func TestShutdownDrainsKeepAlive(t *testing.T) {
	bs := blockingSearcher{started: make(chan struct{}, 1), release: make(chan struct{})}
	blocking := newTestServer(t, bs, func(c *ServerConfig) { c.DrainTimeout = time.Minute })
	plain := newTestServer(t, overlapSearcher{testDocs}, func(c *ServerConfig) { c.DrainTimeout = time.Minute })
	for _, tc := range []struct {
		name     string
		srv      *Server
		inFlight bool
	}{{"idle keep-alive connection", plain, false}, {"request in flight", blocking, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- tc.srv.Serve(ctx, ln) }()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			url := "http://" + ln.Addr().String()
			post := func() (*http.Response, error) {
				return client.Post(url+"/retrieve", "application/json", strings.NewReader(`{"queries":["paris"]}`))
			}
			var resp *http.Response
			if tc.inFlight {
				done := make(chan struct{})
				go func() {
					defer close(done)
					resp, err = post()
				}()
				<-bs.started
				cancel()
				time.Sleep(50 * time.Millisecond) // the shutdown has begun
				close(bs.release)
				<-done
			} else {
				first, err := post()
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, first.Body)
				first.Body.Close()
				if first.Close {
					t.Fatal("an answer before the shutdown closed the connection")
				}
				cancel()
				time.Sleep(50 * time.Millisecond) // the shutdown has begun
				resp, err = post()                // on the kept-alive connection
			}
			if err != nil {
				t.Fatalf("request during the shutdown: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !resp.Close {
				t.Errorf("answer during the shutdown: status %d, Connection: close %v; want 200 and true", resp.StatusCode, resp.Close)
			}
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Serve still draining after its clients closed their connections")
			}
		})
	}
}

func TestConcurrentRequests(t *testing.T) {
	srv := newTestServer(t, overlapSearcher{testDocs}, func(c *ServerConfig) { c.Concurrency = 4; c.Queue = 1000 })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	client, err := NewClient(ts.URL, ClientOptions{MaxRetries: 0})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				q := []string{"France", "Germany", "Italy"}[(g+i)%3]
				hits, err := client.Search(context.Background(), []string{q, "capital"}, 2)
				if err != nil {
					t.Error(err)
					return
				}
				if len(hits) != 2 || len(hits[0]) != 1 || !strings.Contains(hits[0][0].Document.Contents, q) || len(hits[1]) != 2 {
					t.Errorf("query %q: %+v", q, hits)
					return
				}
			}
		}()
	}
	wg.Wait()
	m := do(t, srv, "GET", "/metrics", "").Body.String()
	if !strings.Contains(m, `ssp_search_requests_total{code="200",path="/retrieve"} 640`) {
		t.Errorf("want 640 answered requests in metrics:\n%s", m)
	}
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	for _, mutate := range []func(*ServerConfig){
		func(c *ServerConfig) { c.DefaultTopK = 0 },
		func(c *ServerConfig) { c.MaxTopK = 1; c.DefaultTopK = 3 },
		func(c *ServerConfig) { c.MaxQueries = -1 },
		func(c *ServerConfig) { c.RequestMemory = HitBytes }, // not one query at the max topk
		func(c *ServerConfig) { c.Concurrency = 0 },
		func(c *ServerConfig) { c.Queue = -1 },
		func(c *ServerConfig) { c.DrainTimeout = -time.Second },
		func(c *ServerConfig) { c.MaxBodyBytes = 1 },
	} {
		cfg := DefaultServerConfig()
		mutate(&cfg)
		if _, err := NewServer(overlapSearcher{}, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func FuzzRetrieveRequest(f *testing.F) {
	for _, seed := range []string{
		`{"queries":["who wrote hamlet"],"topk":3,"return_scores":true}`,
		`{"queries":["a","b"]}`,
		`{"queries":[],"topk":0}`,
		`{"queries":[null],"topk":"x"}`,
		`{"queries":"a","topk":1e99}`,
		`[1,2,3]`,
		`null`,
		``,
		`{"queries":["\u0000\ud800"],"topk":-9223372036854775809}`,
	} {
		f.Add([]byte(seed))
	}
	srv := newTestServer(f, overlapSearcher{testDocs}, func(c *ServerConfig) { c.MaxBodyBytes = 4096 })
	f.Fuzz(func(t *testing.T, body []byte) {
		req, reqErr := decodeRetrieveRequest(body, srv.cfg)
		if reqErr == nil {
			if len(req.Queries) == 0 || len(req.Queries) > srv.cfg.QueryLimit(req.TopK) || req.TopK < 1 || req.TopK > srv.cfg.MaxTopK {
				t.Fatalf("accepted out-of-bounds request %+v", req)
			}
		} else if reqErr.status < 400 || reqErr.status > 499 || reqErr.msg == "" {
			t.Fatalf("bad rejection %+v", reqErr)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("POST", "/retrieve", bytes.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if len(body) <= int(srv.cfg.MaxBodyBytes) && (rec.Code == 200) != (reqErr == nil) {
			t.Fatalf("status %d but decoder error %v", rec.Code, reqErr)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body)
		}
	})
}

func ExampleFormatHits() {
	fmt.Print(FormatHits([]Hit{{Document: testDocs[0]}, {Document: testDocs[2]}}))
	// Output:
	// Doc 1(Title: "Paris") Paris is the capital of France.
	// Doc 2(Title: "Rome") Rome is the capital city of Italy.
}
