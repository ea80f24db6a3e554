package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ssp-project/ssp/internal/httpstatus"
)

// ServerConfig bounds what one /retrieve request may ask for and how much
// work the server accepts at once.
type ServerConfig struct {
	DefaultTopK int // hits per query when a request has no topk
	MaxTopK     int // largest topk accepted
	// MaxQueries caps the queries of one request; 0 derives the cap from
	// RequestMemory at the request's topk (QueryLimit).
	MaxQueries int
	// RequestMemory bounds the answer one request may build: its queries ×
	// topk hits of about HitBytes each are held until the answer is written.
	RequestMemory int64
	MaxBodyBytes  int64 // largest request body accepted
	Concurrency   int   // requests searched at the same time
	Queue         int   // requests allowed to wait for a search slot; more get 503
	// DrainTimeout is how long Serve keeps connections open after its
	// context is cancelled, answering every request with "Connection:
	// close", so that keep-alive clients learn of the shutdown from an
	// answer instead of a connection closed under a request they just sent.
	// It ends early once every connection is closed.
	DrainTimeout time.Duration
	// ShutdownTimeout is how long Serve then waits for requests in flight
	// before closing their connections.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger // nil logs nothing
}

// HitBytes is the memory one hit of an answer is reckoned to take: a
// wiki-18 passage (about 100 words, 600 bytes of text) held once as a
// search result and once encoded in the JSON answer, with its id, score
// and the structures around them.
const HitBytes = 1 << 10

// DefaultServerConfig returns the limits used by `ssp search serve`.
//
// The query limit follows from memory, not from a fixed count: 64 MiB per
// request admits 21,845 queries at topk 3 (Search-R1's GRPO sends 512
// prompts × 5 rollouts = 2,560 queries in one request), 6,553 at topk 10
// and 655 at topk 100, and with Concurrency requests searched at once the
// answers in memory stay under Concurrency × 64 MiB. The body limit admits
// 2,560 queries of 3,000 bytes each, longer than the 500-token responses
// Search-R1's queries are cut from.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		DefaultTopK:     3,
		MaxTopK:         100,
		RequestMemory:   64 << 20,
		MaxBodyBytes:    8 << 20,
		Concurrency:     4,
		Queue:           256,
		DrainTimeout:    2 * time.Second,
		ShutdownTimeout: 10 * time.Second,
	}
}

// Validate reports the first limit that cannot work, naming it.
func (c ServerConfig) Validate() error {
	switch {
	case c.DefaultTopK < 1:
		return fmt.Errorf("default topk %d: must be at least 1", c.DefaultTopK)
	case c.MaxTopK < c.DefaultTopK:
		return fmt.Errorf("max topk %d: must be at least the default topk %d", c.MaxTopK, c.DefaultTopK)
	case c.MaxQueries < 0:
		return fmt.Errorf("max queries %d: must not be negative (0: derived from the request memory)", c.MaxQueries)
	case c.MaxQueries == 0 && c.RequestMemory < int64(c.MaxTopK)*HitBytes:
		return fmt.Errorf("request memory %d bytes: must hold one query at the max topk %d (%d bytes)", c.RequestMemory, c.MaxTopK, c.MaxTopK*HitBytes)
	case c.MaxBodyBytes < 64:
		return fmt.Errorf("max body %d bytes: must be at least 64", c.MaxBodyBytes)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency)
	case c.Queue < 0:
		return fmt.Errorf("queue %d: must not be negative", c.Queue)
	case c.DrainTimeout < 0:
		return fmt.Errorf("drain timeout %v: must not be negative", c.DrainTimeout)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("shutdown timeout %v: must not be negative", c.ShutdownTimeout)
	}
	return nil
}

// QueryLimit is the most queries one request at topk may hold: MaxQueries
// when set, else as many as RequestMemory admits.
func (c ServerConfig) QueryLimit(topK int) int {
	if c.MaxQueries > 0 {
		return c.MaxQueries
	}
	return int(c.RequestMemory / (int64(max(topK, 1)) * HitBytes))
}

// Server answers Search-R1-compatible retrieval requests (POST /retrieve)
// from a Searcher, plus GET /status, /healthz and /metrics.
//
// Admission is bounded: at most Concurrency requests search at once and at
// most Queue more wait; any request beyond that is refused at once with 503
// and Retry-After, so a burst of clients cannot pile up unbounded memory.
type Server struct {
	searcher Searcher
	cfg      ServerConfig
	log      *slog.Logger
	admitted chan struct{} // capacity Concurrency+Queue: requests searching or waiting
	slots    chan struct{} // capacity Concurrency: requests searching
	waiting  atomic.Int64
	inFlight atomic.Int64
	draining atomic.Bool  // shutting down: every answer closes its connection
	conns    atomic.Int64 // open client connections
	metrics  *serverMetrics
	mux      *http.ServeMux
}

// NewServer returns a Server over s with the given limits.
func NewServer(s Searcher, cfg ServerConfig) (*Server, error) {
	if s == nil {
		return nil, errors.New("search server: nil searcher")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("search server: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &Server{
		searcher: s,
		cfg:      cfg,
		log:      log,
		admitted: make(chan struct{}, cfg.Concurrency+cfg.Queue),
		slots:    make(chan struct{}, cfg.Concurrency),
		mux:      http.NewServeMux(),
	}
	srv.metrics = newServerMetrics(
		func() float64 { return float64(srv.waiting.Load()) },
		func() float64 { return float64(srv.inFlight.Load()) })
	srv.mux.HandleFunc("/retrieve", srv.handleRetrieve)
	srv.mux.HandleFunc("/status", srv.handleStatus)
	srv.mux.HandleFunc("/healthz", srv.handleStatus)
	srv.mux.HandleFunc("/metrics", srv.handleMetrics)
	srv.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "path "+r.URL.Path+": not found; the API is POST /retrieve, GET /status, /healthz, /metrics")
	})
	return srv, nil
}

// ServeHTTP routes a request, counts it in the metrics and turns a panic
// anywhere below into a 500 JSON answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &httpstatus.Recorder{ResponseWriter: w, Draining: &s.draining}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.Wrote() {
				writeError(rec, http.StatusInternalServerError, "internal error while searching")
			}
		}
		s.metrics.observe(r.URL.Path, rec.Status(), time.Since(start))
	}()
	s.mux.ServeHTTP(rec, r)
}

// Serve answers requests on ln until ctx is cancelled. Then, for up to
// DrainTimeout or until every client has closed its connection, it keeps
// answering, each answer with "Connection: close"; then it stops accepting,
// closes idle connections, lets requests in flight finish for up to
// ShutdownTimeout (http.Server.Shutdown) and returns nil. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.conns.Add(-1)
			}
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("search server %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Info("search server shutting down", "addr", ln.Addr().String(), "open_connections", s.conns.Load())
	s.draining.Store(true)
	for deadline := time.Now().Add(s.cfg.DrainTimeout); s.conns.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc // http.ErrServerClosed once Shutdown has begun
	if err != nil {
		hs.Close()
		return fmt.Errorf("search server %s: shutdown: %w", ln.Addr(), err)
	}
	return nil
}

// retrieveRequest is the body of POST /retrieve, as Search-R1's
// retrieval_server.py reads it. Fields it does not know are ignored, as
// pydantic does there.
type retrieveRequest struct {
	Queries      []string `json:"queries"`
	TopK         int      `json:"topk"`
	ReturnScores bool     `json:"return_scores"`
}

// requestError is a client mistake; its message names the field at fault.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// decodeRetrieveRequest parses and checks a /retrieve body. A missing or
// null topk becomes cfg.DefaultTopK; a missing return_scores is false, as in
// Search-R1.
func decodeRetrieveRequest(body []byte, cfg ServerConfig) (retrieveRequest, *requestError) {
	var wire struct {
		Queries      *[]*string       `json:"queries"`
		TopK         *json.RawMessage `json:"topk"`
		ReturnScores *bool            `json:"return_scores"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&wire); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return retrieveRequest{}, badRequest("field %q: got JSON %s, want %s", typeErr.Field, typeErr.Value, wantType(typeErr.Field))
		}
		if errors.As(err, &typeErr) {
			return retrieveRequest{}, badRequest("body: got JSON %s, want an object", typeErr.Value)
		}
		if errors.Is(err, io.EOF) {
			return retrieveRequest{}, badRequest("body: empty, want a JSON object with \"queries\"")
		}
		return retrieveRequest{}, badRequest("body: invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return retrieveRequest{}, badRequest("body: unexpected data after the JSON object")
	}
	if wire.Queries == nil {
		return retrieveRequest{}, badRequest("field \"queries\": missing, want a list of strings")
	}
	queries := *wire.Queries
	if len(queries) == 0 {
		return retrieveRequest{}, badRequest("field \"queries\": empty list, want at least one query")
	}
	req := retrieveRequest{Queries: make([]string, len(queries)), TopK: cfg.DefaultTopK}
	for i, q := range queries {
		if q == nil {
			return retrieveRequest{}, badRequest("field \"queries\"[%d]: null, want a string", i)
		}
		req.Queries[i] = *q
	}
	if wire.TopK != nil && string(*wire.TopK) != "null" {
		k, err := strconv.ParseInt(string(*wire.TopK), 10, 64)
		if err != nil {
			return retrieveRequest{}, badRequest("field \"topk\": got %s, want an integer", *wire.TopK)
		}
		if k < 1 || k > int64(cfg.MaxTopK) {
			return retrieveRequest{}, badRequest("field \"topk\": %d out of range, want 1 to %d", k, cfg.MaxTopK)
		}
		req.TopK = int(k)
	}
	if limit := cfg.QueryLimit(req.TopK); len(req.Queries) > limit {
		if cfg.MaxQueries > 0 {
			return retrieveRequest{}, badRequest("field \"queries\": %d queries, at most %d allowed (the server's --max-queries); send them in several requests",
				len(req.Queries), limit)
		}
		return retrieveRequest{}, badRequest("field \"queries\": %d queries at topk %d, at most %d allowed (%d MiB of answer per request, the server's --request-memory); send them in several requests",
			len(req.Queries), req.TopK, limit, cfg.RequestMemory>>20)
	}
	if wire.ReturnScores != nil {
		req.ReturnScores = *wire.ReturnScores
	}
	return req, nil
}

func wantType(field string) string {
	switch field {
	case "queries":
		return "a list of strings"
	case "return_scores":
		return "a boolean"
	case "topk":
		return "an integer"
	}
	if len(field) > len("queries") && field[:len("queries")] == "queries" {
		return "a string"
	}
	return "another type"
}

func (s *Server) handleRetrieve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+": /retrieve takes POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	req, reqErr := decodeRetrieveRequest(body, s.cfg)
	if reqErr != nil {
		writeError(w, reqErr.status, reqErr.msg)
		return
	}

	select {
	case s.admitted <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "server busy: search queue full, retry later")
		return
	}
	defer func() { <-s.admitted }()
	s.waiting.Add(1)
	select {
	case s.slots <- struct{}{}:
		s.waiting.Add(-1)
	case <-r.Context().Done():
		s.waiting.Add(-1)
		writeError(w, http.StatusServiceUnavailable, "request cancelled while queued")
		return
	}
	defer func() { <-s.slots }()

	s.inFlight.Add(1)
	hits, err := s.searcher.Search(r.Context(), req.Queries, req.TopK)
	s.inFlight.Add(-1)
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away; nobody reads this answer.
			writeError(w, http.StatusServiceUnavailable, "request cancelled")
			return
		}
		s.log.Error("search failed", "queries", len(req.Queries), "err", err)
		writeError(w, http.StatusInternalServerError, "search failed: "+err.Error())
		return
	}
	if len(hits) != len(req.Queries) {
		s.log.Error("searcher answered the wrong number of queries", "queries", len(req.Queries), "results", len(hits))
		writeError(w, http.StatusInternalServerError, "search failed: wrong number of results")
		return
	}
	writeJSON(w, http.StatusOK, retrieveResponse(hits, req.ReturnScores))
}

// retrieveResponse shapes hits as Search-R1 does: with scores each hit is
// {"document": ..., "score": ...}; without, the documents themselves.
func retrieveResponse(hits [][]Hit, withScores bool) any {
	if withScores {
		result := make([][]Hit, len(hits))
		for i, h := range hits {
			result[i] = h
			if result[i] == nil {
				result[i] = []Hit{}
			}
		}
		return struct {
			Result [][]Hit `json:"result"`
		}{result}
	}
	result := make([][]Document, len(hits))
	for i, hs := range hits {
		result[i] = make([]Document, len(hs))
		for j, h := range hs {
			result[i][j] = h.Document
		}
	}
	return struct {
		Result [][]Document `json:"result"`
	}{result}
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+": "+r.URL.Path+" takes GET")
		return
	}
	writeJSON(w, http.StatusOK, "ok")
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+": /metrics takes GET")
		return
	}
	s.metrics.handler.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}
