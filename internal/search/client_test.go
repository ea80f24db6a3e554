package search

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func fastOptions() ClientOptions {
	return ClientOptions{Timeout: 2 * time.Second, MaxRetries: 3, BaseBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

func TestNewClientURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8000", "http://127.0.0.1:8000/retrieve"},
		{"http://127.0.0.1:8000/", "http://127.0.0.1:8000/retrieve"},
		{"http://127.0.0.1:8000/retrieve", "http://127.0.0.1:8000/retrieve"},
		{" https://search.example/api/retrieve ", "https://search.example/api/retrieve"},
		{"http://h/api", "http://h/api/retrieve"},
	}
	for _, tt := range tests {
		c, err := NewClient(tt.in, ClientOptions{})
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if c.URL() != tt.want {
			t.Errorf("%q: url %q, want %q", tt.in, c.URL(), tt.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8000", "ftp://h/retrieve", "http://", "http://[::1"} {
		if _, err := NewClient(bad, ClientOptions{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestClientAgainstServer(t *testing.T) {
	ts := httptest.NewServer(newTestServer(t, overlapSearcher{testDocs}, nil))
	defer ts.Close()
	c, err := NewClient(ts.URL, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	hits, err := c.Search(context.Background(), []string{"Germany", "nothing"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 2 || len(hits[0]) != 1 || hits[0][0].Document != testDocs[1] || hits[0][0].Score != 1 || len(hits[1]) != 0 {
		t.Errorf("hits = %+v", hits)
	}
	// A 4xx is returned with the server's message.
	_, err = c.Search(context.Background(), []string{"a"}, 1000)
	if err == nil || !strings.Contains(err.Error(), "topk") || !strings.Contains(err.Error(), "400") {
		t.Errorf("topk 1000: err = %v, want a 400 naming topk", err)
	}
}

func TestDecodeBothResponseShapes(t *testing.T) {
	withScores := `{"result":[[{"document":{"id":"7","contents":"\"T\"\nx","extra":1},"score":1.5}],[]]}`
	without := `{"result":[[{"id":7,"contents":"\"T\"\nx"}],[]]}`
	for name, body := range map[string]string{"scores": withScores, "documents": without} {
		hits, err := decodeRetrieveResponse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(hits) != 2 || len(hits[0]) != 1 || hits[0][0].Document != (Document{ID: "7", Contents: "\"T\"\nx"}) || len(hits[1]) != 0 {
			t.Errorf("%s: %+v", name, hits)
		}
	}
	for _, bad := range []string{`{}`, `{"result":"x"}`, `{"result":[["doc"]]}`, `{"result":[[{"id":true}]]}`, `nope`} {
		if _, err := decodeRetrieveResponse([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

// flaky answers with the given statuses in turn, then with a real answer.
func flaky(t *testing.T, statuses []int, retryAfter string, calls *atomic.Int32) *httptest.Server {
	real := newTestServer(t, overlapSearcher{testDocs}, nil)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		if n < len(statuses) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			writeError(w, statuses[n], "try again")
			return
		}
		real.ServeHTTP(w, r)
	}))
}

func TestClientRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		wantErr  bool
		calls    int32
	}{
		{"503 then ok", []int{503, 503}, false, 3},
		{"429 then ok", []int{429}, false, 2},
		{"500 502 504 then ok", []int{500, 502, 504}, false, 4},
		{"too many failures", []int{503, 503, 503, 503, 503}, true, 4},
		{"400 not retried", []int{400}, true, 1},
		{"404 not retried", []int{404}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			ts := flaky(t, tt.statuses, "", &calls)
			defer ts.Close()
			c, _ := NewClient(ts.URL+"/retrieve", fastOptions())
			hits, err := c.Search(context.Background(), []string{"Paris"}, 1)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (len(hits) != 1 || hits[0][0].Document.ID != "0") {
				t.Errorf("hits = %+v", hits)
			}
			if got := calls.Load(); got != tt.calls {
				t.Errorf("%d calls, want %d", got, tt.calls)
			}
		})
	}
}

func TestClientHonoursRetryAfter(t *testing.T) {
	var calls atomic.Int32
	ts := flaky(t, []int{503}, "1", &calls)
	defer ts.Close()
	opts := fastOptions()
	opts.MaxBackoff = 5 * time.Second
	c, _ := NewClient(ts.URL, opts)
	start := time.Now()
	if _, err := c.Search(context.Background(), []string{"Paris"}, 1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, want at least the 1s Retry-After", d)
	}
}

func TestClientRetriesConnectionErrors(t *testing.T) {
	// Reserve a port, then start the server on it only after the first attempt failed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	opts := fastOptions()
	opts.MaxRetries = 50
	opts.BaseBackoff = 10 * time.Millisecond
	opts.MaxBackoff = 50 * time.Millisecond
	c, _ := NewClient("http://"+addr, opts)
	done := make(chan error, 1)
	go func() {
		_, err := c.Search(context.Background(), []string{"Paris"}, 1)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	srv := &http.Server{Handler: newTestServer(t, overlapSearcher{testDocs}, nil)}
	go srv.Serve(ln)
	defer srv.Close()
	if err := <-done; err != nil {
		t.Errorf("search after the server came up: %v", err)
	}
}

func TestClientTimeoutAndCancel(t *testing.T) {
	bs := blockingSearcher{started: make(chan struct{}, 100), release: make(chan struct{})}
	defer close(bs.release)
	ts := httptest.NewServer(newTestServer(t, bs, nil))
	defer ts.Close()

	opts := ClientOptions{Timeout: 50 * time.Millisecond, MaxRetries: 1, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	c, _ := NewClient(ts.URL, opts)
	start := time.Now()
	_, err := c.Search(context.Background(), []string{"a"}, 1)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timed out after %v", d)
	}

	c, _ = NewClient(ts.URL, ClientOptions{Timeout: time.Minute, MaxRetries: 3})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-bs.started; cancel() }()
	_, err = c.Search(ctx, []string{"a"}, 1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	c, _ := NewClient("http://h", ClientOptions{BaseBackoff: 10 * time.Millisecond, MaxBackoff: time.Second})
	for attempt := range 40 {
		window := min(10*time.Millisecond<<min(attempt, 30), time.Second)
		for range 20 {
			d := c.backoff(attempt, 0)
			if d < window/2 || d > window {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, d, window/2, window)
			}
		}
	}
	if d := c.backoff(0, 700*time.Millisecond); d != 700*time.Millisecond {
		t.Errorf("Retry-After 700ms gave %v", d)
	}
	if d := c.backoff(0, time.Hour); d != time.Second {
		t.Errorf("Retry-After 1h gave %v, want capped at 1s", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	if d := parseRetryAfter("3"); d != 3*time.Second {
		t.Errorf("3 -> %v", d)
	}
	for _, v := range []string{"", "-1", "soon"} {
		if d := parseRetryAfter(v); d != 0 {
			t.Errorf("%q -> %v", v, d)
		}
	}
	if d := parseRetryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); d < 59*time.Minute {
		t.Errorf("date an hour ahead -> %v", d)
	}
}
