package judge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stub answers chat requests with the replies in order (the last repeats);
// a reply of "500" or "429" is sent as that status code, "sleep" stalls.
func stub(t *testing.T, replies ...string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "bad path", 404)
			return
		}
		var req chatRequest
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil || req.Model != "judge-m" || req.Temperature != 0 || len(req.Messages) != 1 {
			http.Error(w, "bad request", 400)
			return
		}
		reply := replies[min(i, len(replies)-1)]
		switch reply {
		case "500":
			http.Error(w, "boom", 500)
			return
		case "429":
			http.Error(w, "slow down", 429)
			return
		case "sleep":
			time.Sleep(300 * time.Millisecond)
			reply = "Correct"
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": reply}}}})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func newJudge(t *testing.T, url string, mod func(*Config)) *Judge {
	t.Helper()
	cfg := Config{BaseURL: url, Model: "judge-m", MaxRetries: 2, Backoff: time.Millisecond, Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	j, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func TestParseVerdict(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{"Correct", true, false},
		{"correct.", true, false},
		{"**Correct**", true, false},
		{"Incorrect", false, false},
		{"The answer is Incorrect", false, false},
		{"Not correct, so: Incorrect.", false, false},
		{"Correct or Incorrect", false, false},
		{"", false, true},
		{"Yes", false, true},
		{"Correctly", false, true},
		{"Correct!?maybe", false, true},
	} {
		got, err := ParseVerdict(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseVerdict(%q) = %v, %v; want %v, err=%v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestIsCorrect(t *testing.T) {
	ctx := context.Background()
	golds := []string{"Paris"}
	for _, tc := range []struct {
		name     string
		replies  []string
		want     bool
		wantErr  bool
		requests int64
	}{
		{"correct", []string{"Correct"}, true, false, 1},
		{"wrong", []string{"Incorrect"}, false, false, 1},
		{"garbage", []string{"I think so"}, false, true, 1},
		{"500 then ok", []string{"500", "Correct"}, true, false, 2},
		{"429 then ok", []string{"429", "Correct"}, true, false, 2},
		{"500 always", []string{"500"}, false, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := stub(t, tc.replies...)
			j := newJudge(t, srv.URL, nil)
			got, err := j.IsCorrect(ctx, "capital of France?", "the city of Paris", golds)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("got %v, %v; want %v, err=%v", got, err, tc.want, tc.wantErr)
			}
			if n.Load() != tc.requests {
				t.Errorf("requests = %d, want %d", n.Load(), tc.requests)
			}
			if c := j.Counters(); tc.wantErr && c.Errors != 1 {
				t.Errorf("errors counter = %d, want 1", c.Errors)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	srv, _ := stub(t, "sleep")
	j := newJudge(t, srv.URL, func(c *Config) { c.Timeout = 50 * time.Millisecond; c.MaxRetries = 1 })
	got, err := j.IsCorrect(context.Background(), "q", "p", []string{"g"})
	if got || err == nil {
		t.Fatalf("timeout: got %v, %v; want false with error", got, err)
	}
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "verdicts.jsonl")
	srv, n := stub(t, "Correct")
	ctx := context.Background()
	j := newJudge(t, srv.URL, func(c *Config) { c.CachePath = cache })
	if ok, err := j.IsCorrect(ctx, "q", "p", []string{"b", "a"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// Same verdict, golds in another order: no second request.
	if ok, err := j.IsCorrect(ctx, "q", "p", []string{"a", "b"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if n.Load() != 1 || j.Counters().CacheHits != 1 {
		t.Fatalf("requests=%d hits=%d, want 1 and 1", n.Load(), j.Counters().CacheHits)
	}
	j.Close()

	// Simulate an interrupted append, then reload: the verdict survives.
	f, _ := os.OpenFile(cache, os.O_APPEND|os.O_WRONLY, 0o644)
	f.WriteString(`{"key":"abc","corr`)
	f.Close()
	j2 := newJudge(t, srv.URL, func(c *Config) { c.CachePath = cache })
	if ok, err := j2.IsCorrect(ctx, "q", "p", []string{"a", "b"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if n.Load() != 1 {
		t.Fatalf("reload: requests=%d, want 1 (cache hit)", n.Load())
	}
	// A different judge model is a different key.
	if CacheKey("q", "p", []string{"a"}, "m1") == CacheKey("q", "p", []string{"a"}, "m2") {
		t.Fatal("cache key ignores the judge model")
	}
	// After the torn line, appends are still readable.
	if _, err := j2.IsCorrect(ctx, "q2", "p", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	j2.Close()
	j3 := newJudge(t, srv.URL, func(c *Config) { c.CachePath = cache })
	if len(j3.cache) != 2 {
		t.Fatalf("cache entries after reload = %d, want 2", len(j3.cache))
	}
}

func TestConcurrencyLimit(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte(`{"choices":[{"message":{"role":"assistant","content":"Incorrect"}}]}`))
	}))
	defer srv.Close()
	j := newJudge(t, srv.URL, func(c *Config) { c.Concurrency = 2 })
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			j.IsCorrect(context.Background(), "q", string(rune('a'+i)), []string{"g"})
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	if peak.Load() > 2 || j.Counters().Incorrect != 8 {
		t.Fatalf("peak in flight = %d (limit 2), incorrect = %d", peak.Load(), j.Counters().Incorrect)
	}
}

func FuzzParseVerdict(f *testing.F) {
	for _, s := range []string{"Correct", "Incorrect", "**Incorrect**.", "not Correct", "", "correct incorrect", "Correct\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok, err := ParseVerdict(s)
		if err != nil && ok {
			t.Fatal("error with a correct verdict")
		}
		if ok && strings.Contains(strings.ToLower(lastWord(s)), "incorrect") {
			t.Fatalf("%q parsed as correct", s)
		}
	})
}

func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

func TestChat(t *testing.T) {
	var got chatRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil || r.Header.Get("Authorization") != "Bearer sk-test" {
			http.Error(w, "bad request", 400)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": "<answer> Osk </answer>"}}}})
	}))
	t.Cleanup(srv.Close)
	t.Setenv("JUDGE_TEST_KEY", "sk-test")
	j := newJudge(t, srv.URL, func(c *Config) { c.APIKeyEnv = "JUDGE_TEST_KEY" })
	reply, err := j.Chat(context.Background(), "Answer from the documents.", "Question: which town?", 64, 0.5)
	if err != nil || reply != "<answer> Osk </answer>" {
		t.Fatalf("Chat = %q, %v", reply, err)
	}
	if len(got.Messages) != 2 || got.Messages[0].Role != "system" || got.Messages[1].Content != "Question: which town?" ||
		got.MaxTokens != 64 || got.Temperature != 0.5 || got.Model != "judge-m" {
		t.Fatalf("request %+v", got)
	}
	if c := j.Counters(); c.Correct+c.Incorrect+c.Errors != 0 {
		t.Fatalf("a chat reply was counted as a verdict: %+v", c)
	}
	// No bound: no max_tokens in the request (an endpoint refuses 0).
	got = chatRequest{MaxTokens: -1}
	if _, err := j.Chat(context.Background(), "", "x", 0, 0); err != nil || got.MaxTokens != -1 {
		t.Fatalf("Chat with no bound: max_tokens %d sent (%v), want none", got.MaxTokens, err)
	}
	srv.Close()
	if _, err := j.Chat(context.Background(), "", "x", 8, 0); err == nil {
		t.Fatal("closed server: no error")
	}
}
