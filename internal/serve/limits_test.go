package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// longChat is a chat request that runs for many seconds unless stopped:
// thousands of tokens, past the EOS token.
func longChat() map[string]any {
	return userChat("Tell me everything.", map[string]any{"max_tokens": 4000, "ignore_eos": true, "seed": 1})
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestQueueFull checks that a model holding MaxBatch+Queue requests
// refuses the next one at once with 503, Retry-After and an OpenAI-style
// error, and serves again once there is room.
//
// Mutation seen to fail it: admitting one request more than
// MaxBatch+Queue (> instead of >= in Submit).
func TestQueueFull(t *testing.T) {
	ts := startServer(t, 1, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	resp := ts.openStream(t, ctx, longChat())
	readEvents(t, bufio.NewReader(resp.Body), 3)
	status, header, data := ts.post(t, "/v1/chat/completions", userChat("hi", map[string]any{"max_tokens": 2}))
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" {
		t.Errorf("with the queue full: status %d, Retry-After %q: %s", status, header.Get("Retry-After"), data)
	} else if e := errorBody(t, data); e.Type != "server_error" || *e.Code != "server_busy" {
		t.Errorf("503 body %s", data)
	}
	cancel()
	resp.Body.Close()
	waitFor(t, 10*time.Second, "the admission to come back", func() bool { return ts.model.admitted.Load() == 0 })
	ts.complete(t, userChat("hi", map[string]any{"max_tokens": 2}))
}

// TestDisconnectFreesSlot checks that a client leaving in the middle of a
// stream stops its row: with room for one request only, the next request
// is served at once instead of after the thousands of tokens the first
// one asked for, and the model generated few of them.
//
// Mutations seen to fail it: not passing the job's cancellation to the
// engine's row (RowSettings.Cancelled); a job that never reports itself
// cancelled.
func TestDisconnectFreesSlot(t *testing.T) {
	ts := startServer(t, 1, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	resp := ts.openStream(t, ctx, longChat())
	readEvents(t, bufio.NewReader(resp.Body), 5)
	cancel()
	resp.Body.Close()

	start := time.Now()
	var c testCompletion
	for {
		// The handler notices the disconnect within moments; until then
		// the model is still full.
		status, _, data := ts.post(t, "/v1/chat/completions", userChat("hi", map[string]any{"max_tokens": 3, "ignore_eos": true}))
		if status == http.StatusOK {
			c = decodeCompletion(t, data)
			break
		}
		if status != http.StatusServiceUnavailable || time.Since(start) > 5*time.Second {
			t.Fatalf("after the disconnect: status %d after %v: %s", status, time.Since(start), data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.Usage.CompletionTokens != 3 {
		t.Errorf("next request: %d tokens", c.Usage.CompletionTokens)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the next request took %v", took)
	}
	if n := ts.model.generatedTokens.Load(); n > 1000 {
		t.Errorf("%d tokens generated: the cancelled row went on", n)
	}
}

// TestConcurrentRequestsShareBatches checks that requests waiting together
// are decoded as one batch, each still sampling exactly what it samples
// alone with its seed.
//
// Mutations seen to fail it: taking one request per batch in nextBatch;
// seeding rows by their place in the batch.
func TestConcurrentRequestsShareBatches(t *testing.T) {
	ts := startServer(t, 8, 8, nil)
	body := func(seed int) map[string]any {
		return userChat("Who wrote The Taza Mirror?", map[string]any{"max_tokens": 12, "ignore_eos": true, "seed": seed})
	}
	alone := make([]string, 4)
	for i := range alone {
		alone[i] = ts.complete(t, body(i)).Choices[0].Message.Content
	}
	before := batchStats(t, ts)

	// A long request holds the worker while four more arrive together.
	var wg sync.WaitGroup
	occupyWorker(t, ts, &wg)
	together := make([]string, 4)
	for i := range together {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, data, err := ts.tryPost("/v1/chat/completions", body(i))
			if err != nil || status != http.StatusOK {
				t.Errorf("request %d: %d %v %s", i, status, err, data)
				return
			}
			var c testCompletion
			if err := json.Unmarshal(data, &c); err != nil || len(c.Choices) != 1 {
				t.Errorf("request %d: %v %s", i, err, data)
				return
			}
			together[i] = c.Choices[0].Message.Content
		}()
	}
	wg.Wait()
	after := batchStats(t, ts)
	if batches, requests := after.count-before.count, after.sum-before.sum; batches != 2 || requests != 5 {
		t.Errorf("%d requests ran in %d batches, want 5 in 2 (one, then four together)", requests, batches)
	}
	for i := range alone {
		if together[i] != alone[i] {
			t.Errorf("seed %d: alone %q, in a batch %q", i, alone[i], together[i])
		}
	}
}

// occupyWorker sends a chat request of a few hundred tokens and returns
// once the model runs it, so that the requests sent next wait together for
// the following batch; wg is done when it has been answered.
func occupyWorker(t *testing.T, ts *testServer, wg *sync.WaitGroup) {
	t.Helper()
	long := userChat("Tell me everything.", map[string]any{"max_tokens": 300, "ignore_eos": true, "seed": 9})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if status, _, data, err := ts.tryPost("/v1/chat/completions", long); err != nil || status != http.StatusOK {
			t.Errorf("the request holding the worker: %d %v %s", status, err, data)
		}
	}()
	waitFor(t, 10*time.Second, "the model to run the request holding it", func() bool { return ts.model.running.Load() == 1 })
}

type histogramStats struct{ count, sum int }

var batchLine = regexp.MustCompile(`(?m)^ssp_serve_batch_requests_(count|sum)\{kind="chat",model="builtin"\} (\d+)$`)

// batchStats reads the chat batch size histogram from /metrics.
func batchStats(t *testing.T, ts *testServer) histogramStats {
	t.Helper()
	status, data := ts.get(t, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	var h histogramStats
	for _, m := range batchLine.FindAllStringSubmatch(string(data), -1) {
		n, _ := strconv.Atoi(m[2])
		if m[1] == "count" {
			h.count = n
		} else {
			h.sum = n
		}
	}
	return h
}

// TestGracefulShutdown checks that cancelling Serve's context lets a
// request in flight finish and be answered in full, refuses new
// connections, and returns nil once the models have stopped.
//
// Mutation seen to fail it: closing the HTTP server at once instead of
// shutting it down (the request in flight is cut).
func TestGracefulShutdown(t *testing.T) {
	ts := startServer(t, 2, 2, nil)
	type answer struct {
		status int
		data   []byte
		err    error
	}
	got := make(chan answer, 1)
	go func() {
		status, _, data, err := ts.tryPost("/v1/chat/completions", userChat("Tell me everything.", map[string]any{"max_tokens": 400, "ignore_eos": true}))
		got <- answer{status, data, err}
	}()
	waitFor(t, 10*time.Second, "the request to run", func() bool { return ts.model.running.Load() == 1 })
	ts.cancel()
	a := <-got
	if a.err != nil || a.status != http.StatusOK {
		t.Fatalf("request in flight at shutdown: %d %s", a.status, a.data)
	}
	if c := decodeCompletion(t, a.data); c.Usage.CompletionTokens != 400 {
		t.Errorf("request in flight at shutdown: %d of 400 tokens", c.Usage.CompletionTokens)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ts.done <- err // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := http.Get(ts.url + "/healthz"); err == nil {
		t.Error("a new connection was accepted after the shutdown")
	}
	if _, err := ts.model.Submit(context.Background(), Request{Prompt: []int32{1}, MaxTokens: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("submit after shutdown: %v, want ErrClosed", err)
	}
}

// TestAgentBatchBound checks that agent questions waiting together run in
// batches of at most AgentMaxBatch, while chat batches may be larger.
//
// Mutation seen to fail it: bounding agent batches by MaxBatch.
func TestAgentBatchBound(t *testing.T) {
	ts := startServer(t, 8, 8, nil)
	ts.model.cfg.AgentMaxBatch = 2 // before any request reaches the worker
	var wg sync.WaitGroup
	occupyWorker(t, ts, &wg)
	for _, q := range benchmarkQuestions(t, 4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := map[string]any{"model": "builtin-agent", "messages": []map[string]any{{"role": "user", "content": q.Question}}}
			if status, _, data, err := ts.tryPost("/v1/chat/completions", body); err != nil || status != http.StatusOK {
				t.Errorf("agent request: %d %v %s", status, err, data)
			}
		}()
	}
	wg.Wait()
	// The worker records a batch after its answers are sent, so the last
	// one may reach /metrics a moment after its client has its answer.
	agentLine := regexp.MustCompile(`(?m)^ssp_serve_batch_requests_(count|sum)\{kind="agent",model="builtin"\} (\d+)$`)
	got := map[string]string{}
	waitFor(t, 10*time.Second, "the agent batches to be recorded", func() bool {
		status, data := ts.get(t, "/metrics")
		if status != 200 {
			t.Fatal(status)
		}
		for _, m := range agentLine.FindAllStringSubmatch(string(data), -1) {
			got[m[1]] = m[2]
		}
		return got["sum"] == "4"
	})
	if got["count"] != "2" {
		t.Errorf("4 agent questions ran in %s batches, want 2 batches of 2", got["count"])
	}
}

// TestSubmitChecksContext checks that Submit refuses work that cannot fit
// the model's context: an agent question too long for its response budget,
// and a chat prompt with too many new tokens.
//
// Mutation seen to fail it: dropping the agent's context check.
func TestSubmitChecksContext(t *testing.T) {
	m := testModel(t, "builtin", 1, 1)
	defer m.Close(context.Background())
	ctx := context.Background()
	long := strings.Repeat("Where is the Goba Guild? ", 400)
	if _, err := m.Submit(ctx, Request{Agent: true, Question: long}); !errors.Is(err, ErrContextLength) {
		t.Errorf("agent question of %d characters: %v", len(long), err)
	}
	if _, err := m.Submit(ctx, Request{Prompt: []int32{1, 2, 3}, MaxTokens: m.cfg.MaxContext}); !errors.Is(err, ErrContextLength) {
		t.Error("chat prompt with a whole context of new tokens accepted")
	}
	if m.admitted.Load() != 0 {
		t.Errorf("refused requests hold %d admissions", m.admitted.Load())
	}
}
