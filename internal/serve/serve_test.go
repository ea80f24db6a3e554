package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/builtin"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

// The tests serve the embedded model on the built-in world, as `ssp serve`
// does with no --model; it is prepared and loaded once per test binary.
var (
	fixtureOnce sync.Once
	fixture     struct {
		paths builtin.Paths
		model *model.Model
		tok   *tokenizer.Tokenizer
		index *index.Index
		err   error
	}
	fixtureDir string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func loadFixture(t testing.TB) {
	t.Helper()
	fixtureOnce.Do(func() {
		f := &fixture
		if fixtureDir, f.err = os.MkdirTemp("", "ssp-serve-test-"); f.err != nil {
			return
		}
		if f.paths, f.err = builtin.Prepare(context.Background(), fixtureDir, func(string, ...any) {}); f.err != nil {
			return
		}
		if f.tok, f.err = tokenizer.Load(f.paths.Model); f.err != nil {
			return
		}
		if f.index, f.err = index.Open(f.paths.Index); f.err != nil {
			return
		}
		f.model, f.err = model.Load(f.paths.Model, model.LoadOptions{Backend: "go"})
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
}

// builtinAgent is the agent loop `ssp eval` runs the embedded model with.
func builtinAgent() (agent.Config, selfplay.PromptSet) {
	cfg := selfplay.DefaultConfig()
	builtin.TrainConfig(&cfg)
	prompts, err := selfplay.Prompts(cfg.Game.Prompts)
	if err != nil {
		panic(err)
	}
	a := cfg.Agent
	return agent.Config{FinalTag: "answer", Search: true, MaxTurns: a.MaxTurns, MaxTokensPerTurn: a.MaxTokensPerTurn,
		MaxResponseTokens: a.MaxResponseTokens, TopK: a.TopK, MaxInformationChars: a.MaxInformationChars,
		EOSTokenIDs: fixture.tok.EOSTokenIDs()}, prompts
}

// testModel serves the embedded model under name with the given batch and
// queue bounds.
func testModel(t testing.TB, name string, maxBatch, queue int) *Model {
	t.Helper()
	loadFixture(t)
	acfg, prompts := builtinAgent()
	m, err := NewModel(ModelConfig{Name: name, Generator: fixture.model, Tokenizer: fixture.tok, Searcher: fixture.index,
		Solver: prompts.Solver, PromptSet: prompts.Name, Agent: acfg, ChatEOS: fixture.tok.EOSTokenIDs(),
		MaxContext: fixture.model.Config.MaxPositionEmbeddings, MaxBatch: maxBatch, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testServer is a running server on a loopback port.
type testServer struct {
	srv    *Server
	url    string
	model  *Model
	cancel context.CancelFunc
	done   chan error // Serve's result
}

// startServer serves one model named "builtin" and stops the server when
// the test ends.
func startServer(t *testing.T, maxBatch, queue int, edit func(*Config)) *testServer {
	t.Helper()
	m := testModel(t, "builtin", maxBatch, queue)
	cfg := DefaultConfig()
	cfg.ShutdownTimeout = 20 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	srv, err := NewServer([]*Model{m}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, url: "http://" + ln.Addr().String(), model: m, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts
}

// post sends a JSON body ([]byte as it is) and returns the answer's
// status and body.
func (ts *testServer) post(t *testing.T, path string, body any, header ...string) (int, http.Header, []byte) {
	t.Helper()
	status, h, data, err := ts.tryPost(path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return status, h, data
}

// tryPost is post for goroutines other than the test's.
func (ts *testServer) tryPost(path string, body any, header ...string) (int, http.Header, []byte, error) {
	data, isRaw := body.([]byte)
	if !isRaw {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return 0, nil, nil, err
		}
	}
	req, err := http.NewRequest(http.MethodPost, ts.url+path, bytes.NewReader(data))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out, err
}

func (ts *testServer) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(ts.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// testCompletion is the part of a chat.completion the tests read.
type testCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Role             string `json:"role"`
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	SSP *testSSP `json:"ssp"`
}

type testSSP struct {
	Question string `json:"question"`
	Search   *struct {
		Query     string         `json:"query"`
		Documents []documentJSON `json:"documents"`
	} `json:"search"`
	Searches []struct {
		Query     string         `json:"query"`
		Documents []documentJSON `json:"documents"`
	} `json:"searches"`
	Trajectory string `json:"trajectory"`
	Finish     string `json:"finish"`
	Turns      int    `json:"turns"`
}

func (ts *testServer) complete(t *testing.T, body map[string]any) testCompletion {
	t.Helper()
	status, _, data := ts.post(t, "/v1/chat/completions", body)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, data)
	}
	var c testCompletion
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	if c.Object != "chat.completion" || len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || !strings.HasPrefix(c.ID, "chatcmpl-") {
		t.Fatalf("not a chat.completion: %s", data)
	}
	return c
}

// testChunk is the part of a chat.completion.chunk the tests read.
type testChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role             string  `json:"role"`
			Content          *string `json:"content"`
			ReasoningContent string  `json:"reasoning_content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	SSP *testSSP `json:"ssp"`
}

// readSSE parses a server-sent event stream strictly: every event is one
// "data: " line followed by a blank line, each a chat.completion.chunk of
// one completion, and the stream ends with "data: [DONE]".
func readSSE(t *testing.T, r io.Reader) []testChunk {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var chunks []testChunk
	done := false
	for sc.Scan() {
		line := sc.Text()
		if done {
			t.Fatalf("data after [DONE]: %q", line)
		}
		payload, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("event line %q: want \"data: \"", line)
		}
		if !sc.Scan() || sc.Text() != "" {
			t.Fatalf("event %q not followed by a blank line", line)
		}
		if payload == "[DONE]" {
			done = true
			continue
		}
		var c testChunk
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			t.Fatalf("event %q: %v", payload, err)
		}
		if c.Object != "chat.completion.chunk" || (len(chunks) > 0 && c.ID != chunks[0].ID) {
			t.Fatalf("event %q: not a chunk of this completion", payload)
		}
		chunks = append(chunks, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !done {
		t.Fatal("stream ended without data: [DONE]")
	}
	if len(chunks) == 0 || chunks[0].Choices[0].Delta.Role != "assistant" {
		t.Fatal("the first chunk does not open the assistant's message")
	}
	return chunks
}

// stream posts a streaming request and parses its events.
func (ts *testServer) stream(t *testing.T, body map[string]any) []testChunk {
	t.Helper()
	body["stream"] = true
	status, header, data := ts.post(t, "/v1/chat/completions", body)
	if status != http.StatusOK || !strings.HasPrefix(header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q: %s", status, header.Get("Content-Type"), data)
	}
	return readSSE(t, bytes.NewReader(data))
}

// openStream starts a streaming request and returns its response, for
// tests that read part of it; the request ends with ctx.
func (ts *testServer) openStream(t *testing.T, ctx context.Context, body map[string]any) *http.Response {
	t.Helper()
	body["stream"] = true
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/chat/completions", bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return resp
}

// readEvents reads n events of an open stream.
func readEvents(t *testing.T, r *bufio.Reader, n int) {
	t.Helper()
	for read := 0; read < n; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", read, err)
		}
		if strings.HasPrefix(line, "data: ") {
			read++
		}
	}
}

func userChat(text string, extra map[string]any) map[string]any {
	body := map[string]any{"model": "builtin", "messages": []map[string]any{{"role": "user", "content": text}}}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// benchmarkQuestions are the first n questions of the built-in benchmark.
func benchmarkQuestions(t *testing.T, n int) []dataset.Example {
	t.Helper()
	ex, err := dataset.ReadJSONL(context.Background(), fixture.paths.Benchmark)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) < n {
		t.Fatalf("benchmark has %d questions, want %d", len(ex), n)
	}
	return ex[:n]
}

func errorBody(t *testing.T, data []byte) apiError {
	t.Helper()
	var e struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(data, &e); err != nil || e.Error == nil {
		t.Fatalf("not an OpenAI error body: %s", data)
	}
	return *e.Error
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return fmt.Sprintf("%q", *p)
}

func decodeCompletion(t *testing.T, data []byte) testCompletion {
	t.Helper()
	var c testCompletion
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return c
}
