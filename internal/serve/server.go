// Package serve answers OpenAI-compatible chat completion requests with
// the policy models: plain chat under a model's name, and the search agent
// under its name with "-agent", which runs the question through the same
// agent loop and solver prompt as `ssp eval` and returns the answer with
// the searches it made. Requests wait in a bounded queue per model and run
// in batches (Model); GET / is a page that asks the agents a question and
// shows their trajectories as they unfold.
package serve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ssp-project/ssp/internal/httpstatus"
)

// Config holds the server-wide settings.
type Config struct {
	// APIKey, when set, must come with every /v1 request as
	// "Authorization: Bearer KEY".
	APIKey string
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// DefaultMaxTokens bounds a chat completion that gives no max_tokens;
	// MaxTokens is the most a request may ask for.
	DefaultMaxTokens int
	MaxTokens        int
	// ShutdownTimeout is how long Serve lets requests in flight finish
	// once its context is cancelled.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger // nil logs nothing
}

// DefaultConfig returns the settings of `ssp serve`.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 1 << 20, DefaultMaxTokens: 256, MaxTokens: 4096, ShutdownTimeout: 30 * time.Second}
}

// Server routes the HTTP API to its models.
type Server struct {
	cfg      Config
	log      *slog.Logger
	models   map[string]*Model
	order    []*Model
	metrics  *metrics
	mux      *http.ServeMux
	draining atomic.Bool
	created  int64
}

// NewServer serves models (names must differ); it owns them from now on
// and closes them when Serve returns.
func NewServer(models []*Model, cfg Config) (*Server, error) {
	switch {
	case len(models) == 0:
		return nil, errors.New("serve: no models")
	case cfg.MaxBodyBytes < 1024:
		return nil, fmt.Errorf("serve: max body %d bytes, want at least 1024", cfg.MaxBodyBytes)
	case cfg.MaxTokens < 1 || cfg.DefaultMaxTokens < 1:
		return nil, fmt.Errorf("serve: max tokens %d and default max tokens %d, want at least 1", cfg.MaxTokens, cfg.DefaultMaxTokens)
	case cfg.ShutdownTimeout < 0:
		return nil, fmt.Errorf("serve: shutdown timeout %v, want 0 or more", cfg.ShutdownTimeout)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, models: map[string]*Model{}, metrics: newMetrics(), mux: http.NewServeMux(), created: time.Now().Unix()}
	for _, m := range models {
		if s.models[m.Name()] != nil {
			return nil, fmt.Errorf("serve: two models named %q", m.Name())
		}
		s.models[m.Name()] = m
		s.order = append(s.order, m)
		s.metrics.addModel(m)
	}
	s.mux.HandleFunc("/v1/chat/completions", s.handleChat)
	s.mux.HandleFunc("/v1/models", s.handleModels)
	s.mux.HandleFunc("/v1/models/{model}", s.handleModel)
	s.mux.HandleFunc("/healthz", s.handleHealth)
	s.mux.HandleFunc("/metrics", s.handleMetrics)
	s.mux.HandleFunc("/{$}", s.handlePage)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, Type: "invalid_request_error",
			Message: "path " + r.URL.Path + ": not found; the API is POST /v1/chat/completions, GET /v1/models, /healthz, /metrics, and the page at /"})
	})
	return s, nil
}

// modelIDs lists the names requests may use: each model and its agent.
func (s *Server) modelIDs() []string {
	var ids []string
	for _, m := range s.order {
		ids = append(ids, m.Name(), m.Name()+AgentSuffix)
	}
	return ids
}

// ServeHTTP checks the API key, routes the request, counts it in the
// metrics and turns a panic below into a 500 answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &httpstatus.Recorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.Wrote() {
				writeError(rec, &apiError{status: http.StatusInternalServerError, Type: "server_error", Message: "internal error"})
			}
		}
		s.metrics.observeRequest(r.URL.Path, rec.Status(), time.Since(start))
	}()
	if strings.HasPrefix(r.URL.Path, "/v1/") && !s.authorized(r) {
		rec.Header().Set("WWW-Authenticate", `Bearer realm="ssp"`)
		writeError(rec, (&apiError{status: http.StatusUnauthorized, Type: "invalid_request_error",
			Message: "missing or wrong API key: send the server's key as \"Authorization: Bearer KEY\""}).withCode("invalid_api_key"))
		return
	}
	s.mux.ServeHTTP(rec, r)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

// Serve answers requests on ln until ctx is cancelled. Then it stops
// accepting connections, lets the requests in flight finish — streams
// included — for up to ShutdownTimeout, cancels what is left, stops the
// models' workers and returns. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // the request; a long answer is not bounded
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		s.log.Info("shutting down: finishing the requests in flight", "timeout", s.cfg.ShutdownTimeout.String())
		s.draining.Store(true)
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			// Closing the connections cancels the requests' contexts, and
			// with them their rows.
			hs.Close()
			serveErr = fmt.Errorf("serve %s: shutdown: requests still running after %v were cancelled", ln.Addr(), s.cfg.ShutdownTimeout)
		}
		<-errc // http.ErrServerClosed once Shutdown has begun
	}
	// Nothing waits for the models now but cancelled requests.
	cctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	for _, m := range s.order {
		if err := m.Close(cctx); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("serve: model %s: %w", m.Name(), err)
		}
	}
	return serveErr
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Message: "method " + r.Method + ": /v1/chat/completions takes POST"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Message: fmt.Sprintf("body: larger than %d bytes (ssp serve --max-body)", s.cfg.MaxBodyBytes)})
			return
		}
		writeError(w, invalid("", "body: %v", err))
		return
	}
	call, apiErr := s.parseChat(body)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	job, err := call.model.Submit(r.Context(), call.req)
	switch {
	case errors.Is(err, ErrBusy) || errors.Is(err, ErrClosed):
		w.Header().Set("Retry-After", "1")
		writeError(w, (&apiError{status: http.StatusServiceUnavailable, Type: "server_error", Message: err.Error() + "; retry later"}).withCode("server_busy"))
		return
	case errors.Is(err, ErrContextLength):
		writeError(w, invalid("messages", "messages: %v", err).withCode("context_length_exceeded"))
		return
	case err != nil:
		writeError(w, invalid("messages", "messages: %v", err))
		return
	}
	defer job.Abandon() // gives the admission back if the client left; no-op after the end
	id := newCompletionID()
	if call.stream {
		s.streamChat(w, call, job, id)
		return
	}
	first := true
	for {
		ev, err := job.Next()
		if err != nil {
			if r.Context().Err() != nil {
				return // the client left; nobody reads an answer
			}
			s.log.Error("completion failed", "model", call.name, "err", err)
			writeError(w, &apiError{status: http.StatusInternalServerError, Type: "server_error", Message: "generation failed: " + err.Error()})
			return
		}
		if first && ev.Text != "" {
			s.metrics.observeFirstToken(call.model.Name(), time.Since(job.submitted))
			first = false
		}
		if ev.Result != nil {
			writeJSON(w, http.StatusOK, completionBody(call, id, s.created, ev.Result))
			return
		}
	}
}

// streamChat writes a completion as server-sent events in OpenAI's
// chat.completion.chunk format, ending with "data: [DONE]". Plain chat
// streams the content; an agent streams its trajectory as
// reasoning_content, each search with its documents in the chunk's "ssp"
// field, and its answer as the content of the last chunk.
func (s *Server) streamChat(w http.ResponseWriter, call *chatCall, job *Job, id string) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	created := time.Now().Unix()
	send := func(v any) bool {
		data, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	chunk := func(d delta, finish *string) *chunkBody {
		return &chunkBody{ID: id, Object: "chat.completion.chunk", Created: created, Model: call.name,
			Choices: []chunkChoice{{Delta: d, FinishReason: finish}}}
	}
	empty := ""
	if !send(chunk(delta{Role: "assistant", Content: &empty}, nil)) {
		return
	}
	first := true
	for {
		ev, err := job.Next()
		if err != nil {
			if job.ctx.Err() == nil {
				s.log.Error("completion failed", "model", call.name, "err", err)
				send(map[string]any{"error": &apiError{Type: "server_error", Message: "generation failed: " + err.Error()}})
				fmt.Fprint(w, "data: [DONE]\n\n")
			}
			return
		}
		if first && ev.Text != "" {
			s.metrics.observeFirstToken(call.model.Name(), time.Since(job.submitted))
			first = false
		}
		var c *chunkBody
		switch {
		case call.req.Agent && (ev.Text != "" || ev.Search != nil):
			c = chunk(delta{ReasoningContent: ev.Text}, nil)
			if ev.Search != nil {
				c.SSP = &sspChunk{Search: searchJSONOf(*ev.Search)}
			}
		case !call.req.Agent && ev.Text != "":
			text := ev.Text
			c = chunk(delta{Content: &text}, nil)
		}
		if c != nil && !send(c) {
			return
		}
		if r := ev.Result; r != nil {
			finish := r.FinishReason
			last := chunk(delta{}, &finish)
			if call.req.Agent {
				answer := r.Content
				last.Choices[0].Delta.Content = &answer
				last.SSP = sspResultOf(call.req.Question, r)
			}
			u := usageOf(r)
			if !send(last) {
				return
			}
			if call.includeUsage {
				send(&chunkBody{ID: id, Object: "chat.completion.chunk", Created: created, Model: call.name, Choices: []chunkChoice{}, Usage: &u})
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
			if flusher != nil {
				flusher.Flush()
			}
			return
		}
	}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	list := struct {
		Object string      `json:"object"`
		Data   []modelInfo `json:"data"`
	}{Object: "list", Data: []modelInfo{}}
	for _, m := range s.order {
		list.Data = append(list.Data, s.modelInfo(m, false), s.modelInfo(m, true))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	m, agentMode, apiErr := s.lookupModel(r.PathValue("model"))
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	writeJSON(w, http.StatusOK, s.modelInfo(m, agentMode))
}

// modelInfo is an entry of GET /v1/models: OpenAI's fields, and under
// "ssp" what the entry is.
type modelInfo struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	OwnedBy string         `json:"owned_by"`
	SSP     map[string]any `json:"ssp"`
}

func (s *Server) modelInfo(m *Model, agentMode bool) modelInfo {
	info := modelInfo{ID: m.Name(), Object: "model", Created: s.created, OwnedBy: "ssp",
		SSP: map[string]any{"mode": "chat", "max_context": m.cfg.MaxContext}}
	if agentMode {
		a := m.cfg.Agent
		info.ID += AgentSuffix
		info.SSP = map[string]any{"mode": "agent", "model": m.Name(), "prompts": m.cfg.PromptSet,
			"max_turns": a.MaxTurns, "max_tokens_per_turn": a.MaxTokensPerTurn, "max_response_tokens": a.MaxResponseTokens,
			"top_k": a.TopK, "max_information_chars": a.MaxInformationChars}
	}
	return info
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "models": s.modelIDs()})
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	s.metrics.handler.ServeHTTP(w, r)
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, &apiError{status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Message: "method " + r.Method + ": " + r.URL.Path + " takes GET"})
	return false
}

func newCompletionID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "chatcmpl-" + hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"message":"encoding the answer failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, struct {
		Error *apiError `json:"error"`
	}{e})
}
