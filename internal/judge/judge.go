// Package judge asks an LLM behind an OpenAI-compatible chat endpoint whether
// a predicted answer means the same as a gold answer. Verdicts are cached on
// disk so that re-running an evaluation costs no requests, and every failure
// counts as "not correct" (the judge fails closed) while being counted.
package judge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes the judge endpoint and its limits.
type Config struct {
	BaseURL     string        // e.g. http://localhost:8000; "/v1/chat/completions" is appended
	Model       string        // judge model name sent in each request
	APIKeyEnv   string        // name of the environment variable holding the bearer token; empty: none
	Timeout     time.Duration // per request; 0 means 60s
	MaxRetries  int           // retries after the first attempt on 5xx, 429 and connection errors
	Backoff     time.Duration // first retry delay, doubled each retry; 0 means 500ms
	Concurrency int           // requests in flight at once; 0 means 8
	MaxTokens   int           // completion budget; 0 means 16
	CachePath   string        // JSONL verdict log; empty disables the cache
}

// Counters reports what the judge did; Errors are verdicts that failed closed.
type Counters struct {
	Requests  int64 `json:"requests"`
	CacheHits int64 `json:"cache_hits"`
	Correct   int64 `json:"correct"`
	Incorrect int64 `json:"incorrect"`
	Errors    int64 `json:"errors"`
}

// Judge is safe for concurrent use.
type Judge struct {
	cfg    Config
	client *http.Client
	sem    chan struct{}
	apiKey string

	mu    sync.Mutex
	cache map[string]bool
	log   *os.File

	requests, cacheHits, correct, incorrect, errs atomic.Int64
}

// cacheEntry is one line of the verdict log.
type cacheEntry struct {
	Key     string `json:"key"`
	Correct bool   `json:"correct"`
}

// New creates a judge and loads its verdict cache. A torn last line of the
// cache (an interrupted append) is ignored.
func New(cfg Config) (*Judge, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("judge: base URL is empty")
	}
	if cfg.Model == "" {
		return nil, errors.New("judge: model is empty")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 16
	}
	j := &Judge{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		sem:    make(chan struct{}, cfg.Concurrency),
		cache:  map[string]bool{},
	}
	if cfg.APIKeyEnv != "" {
		j.apiKey = os.Getenv(cfg.APIKeyEnv)
		if j.apiKey == "" {
			return nil, fmt.Errorf("judge: environment variable %s is empty", cfg.APIKeyEnv)
		}
	}
	if cfg.CachePath != "" {
		if err := j.loadCache(); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(cfg.CachePath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("judge cache %s: %w", cfg.CachePath, err)
		}
		j.log = f
	}
	return j, nil
}

func (j *Judge) loadCache() error {
	data, err := os.ReadFile(j.cfg.CachePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("judge cache %s: %w", j.cfg.CachePath, err)
	}
	offset := 0
	for lineNo := 1; offset < len(data); lineNo++ {
		end := bytes.IndexByte(data[offset:], '\n')
		complete := end >= 0
		if !complete {
			end = len(data) - offset
		}
		line := data[offset : offset+end]
		if len(bytes.TrimSpace(line)) > 0 {
			var e cacheEntry
			if err := json.Unmarshal(line, &e); err != nil || e.Key == "" {
				if !complete {
					// An interrupted append: drop it so the next append starts on a clean line.
					slog.Warn("judge cache: ignoring torn last line", "file", j.cfg.CachePath, "line", lineNo)
					if err := os.Truncate(j.cfg.CachePath, int64(offset)); err != nil {
						return fmt.Errorf("judge cache %s: %w", j.cfg.CachePath, err)
					}
					return nil
				}
				return fmt.Errorf("judge cache %s: line %d is not a verdict: %v", j.cfg.CachePath, lineNo, err)
			}
			j.cache[e.Key] = e.Correct
		}
		offset += end + 1
	}
	return nil
}

// Close flushes and closes the verdict cache.
func (j *Judge) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.log == nil {
		return nil
	}
	err := j.log.Close()
	j.log = nil
	return err
}

// Counters returns a snapshot of the judge's counters.
func (j *Judge) Counters() Counters {
	return Counters{
		Requests: j.requests.Load(), CacheHits: j.cacheHits.Load(),
		Correct: j.correct.Load(), Incorrect: j.incorrect.Load(), Errors: j.errs.Load(),
	}
}

// CacheKey identifies a verdict: gold order does not matter, the judge model does.
func CacheKey(question, prediction string, golds []string, model string) string {
	sorted := append([]string(nil), golds...)
	sort.Strings(sorted)
	b, _ := json.Marshal([]any{question, prediction, sorted, model})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Prompt is the user message sent to the judge.
func Prompt(question, prediction string, golds []string) string {
	var b strings.Builder
	b.WriteString("You are grading an answer to a question. Decide whether the predicted answer means the same thing as any of the gold answers for this question. ")
	b.WriteString("Ignore differences in formatting, capitalisation and wording that do not change the meaning. An answer that is vaguer, hedges between options or names something else is incorrect.\n\n")
	fmt.Fprintf(&b, "Question: %s\n", question)
	fmt.Fprintf(&b, "Gold answers: %s\n", strings.Join(quoteAll(golds), "; "))
	fmt.Fprintf(&b, "Predicted answer: %q\n\n", prediction)
	b.WriteString("Reply with exactly one word: Correct or Incorrect.")
	return b.String()
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// ParseVerdict reads the judge's reply. The last word, stripped of
// punctuation and markup, must be exactly "Correct" or "Incorrect"
// (case-insensitive); anything else is an error, never a guess.
func ParseVerdict(reply string) (bool, error) {
	fields := strings.Fields(reply)
	if len(fields) == 0 {
		return false, errors.New("judge: empty verdict")
	}
	last := strings.ToLower(strings.Trim(fields[len(fields)-1], "*_`'\".,:;!()[]<>"))
	switch last {
	case "correct":
		return true, nil
	case "incorrect":
		return false, nil
	}
	return false, fmt.Errorf("judge: unparseable verdict %q", truncate(reply, 200))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// IsCorrect asks the judge (or its cache). On any error it returns false
// together with the error, and the error is counted.
func (j *Judge) IsCorrect(ctx context.Context, question, prediction string, golds []string) (bool, error) {
	if len(golds) == 0 {
		j.errs.Add(1)
		return false, errors.New("judge: no gold answers")
	}
	key := CacheKey(question, prediction, golds, j.cfg.Model)
	j.mu.Lock()
	v, hit := j.cache[key]
	j.mu.Unlock()
	if hit {
		j.cacheHits.Add(1)
		j.count(v)
		return v, nil
	}
	reply, err := j.complete(ctx, []chatMessage{{Role: "user", Content: Prompt(question, prediction, golds)}}, j.cfg.MaxTokens, 0)
	if err == nil {
		v, err = ParseVerdict(reply)
	}
	if err != nil {
		j.errs.Add(1)
		return false, err
	}
	j.count(v)
	j.store(key, v)
	return v, nil
}

func (j *Judge) count(v bool) {
	if v {
		j.correct.Add(1)
	} else {
		j.incorrect.Add(1)
	}
}

func (j *Judge) store(key string, v bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cache[key] = v
	if j.log == nil {
		return
	}
	line, _ := json.Marshal(cacheEntry{Key: key, Correct: v})
	if _, err := j.log.Write(append(line, '\n')); err != nil {
		slog.Warn("judge cache: append failed", "file", j.cfg.CachePath, "err", err)
	}
}

type chatRequest struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	Temperature float64       `json:"temperature"`
	MaxTokens   int           `json:"max_tokens,omitempty"` // 0: the endpoint's own bound
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Choices []struct {
		Message chatMessage `json:"message"`
	} `json:"choices"`
}

// errRetryable marks failures worth another attempt.
type errRetryable struct{ err error }

func (e errRetryable) Error() string { return e.err.Error() }
func (e errRetryable) Unwrap() error { return e.err }

// Chat sends a system and a user message to the endpoint and returns the
// reply, with the judge's retries, concurrency limit and credentials; the
// self-play RAG check uses it to have the endpoint's model answer a
// question from documents (verify.rag_answerer: judge). maxTokens ≤ 0
// sends no max_tokens, leaving the bound to the endpoint (OpenAI's API
// refuses 0). Replies are not cached and do not count as verdicts.
func (j *Judge) Chat(ctx context.Context, system, user string, maxTokens int, temperature float64) (string, error) {
	var msgs []chatMessage
	if system != "" {
		msgs = append(msgs, chatMessage{Role: "system", Content: system})
	}
	msgs = append(msgs, chatMessage{Role: "user", Content: user})
	return j.complete(ctx, msgs, maxTokens, temperature)
}

func (j *Judge) complete(ctx context.Context, msgs []chatMessage, maxTokens int, temperature float64) (string, error) {
	select {
	case j.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-j.sem }()

	body, err := json.Marshal(chatRequest{
		Model:       j.cfg.Model,
		Messages:    msgs,
		Temperature: temperature,
		MaxTokens:   maxTokens,
	})
	if err != nil {
		return "", err
	}
	delay := j.cfg.Backoff
	for attempt := 0; ; attempt++ {
		reply, err := j.post(ctx, body)
		var retry errRetryable
		if err == nil || !errors.As(err, &retry) || attempt >= j.cfg.MaxRetries || ctx.Err() != nil {
			return reply, err
		}
		wait := delay + rand.N(delay/2+1)
		slog.Debug("judge: retrying", "attempt", attempt+1, "wait", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		delay *= 2
	}
}

func (j *Judge) post(ctx context.Context, body []byte) (string, error) {
	j.requests.Add(1)
	url := strings.TrimRight(j.cfg.BaseURL, "/") + "/v1/chat/completions"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("judge: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if j.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+j.apiKey)
	}
	resp, err := j.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("judge: %w", ctx.Err())
		}
		return "", errRetryable{fmt.Errorf("judge: %s: %w", url, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", errRetryable{fmt.Errorf("judge: reading response: %w", err)}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return "", errRetryable{fmt.Errorf("judge: %s: HTTP %d: %s", url, resp.StatusCode, truncate(string(data), 200))}
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("judge: %s: HTTP %d: %s", url, resp.StatusCode, truncate(string(data), 200))
	}
	var cr chatResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		return "", fmt.Errorf("judge: decoding response: %w", err)
	}
	if len(cr.Choices) == 0 {
		return "", errors.New("judge: response has no choices")
	}
	return cr.Choices[0].Message.Content, nil
}
