package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client searches through a remote Search-R1-compatible /retrieve server,
// such as `ssp search serve` or Search-R1's own retrieval_server.py.
type Client struct {
	url  string
	opts ClientOptions
	http *http.Client
}

// ClientOptions tunes how a Client waits and retries.
type ClientOptions struct {
	Timeout     time.Duration // per attempt; 0 means 30s
	MaxRetries  int           // extra attempts after a retryable failure; negative means none
	BaseBackoff time.Duration // first wait between attempts; 0 means 100ms
	MaxBackoff  time.Duration // longest wait, Retry-After included; 0 means 10s
	HTTPClient  *http.Client  // nil uses a client with its own connection pool
}

// DefaultClientOptions returns the options used when none are given.
func DefaultClientOptions() ClientOptions {
	return ClientOptions{Timeout: 30 * time.Second, MaxRetries: 4, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}
}

// NewClient returns a Client for the server at base, given either as
// "http://host:port" or as the full ".../retrieve" URL.
func NewClient(base string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil {
		return nil, fmt.Errorf("search client: url %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("search client: url %q: want an http:// or https:// URL", base)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("search client: url %q: no host", base)
	}
	if !strings.HasSuffix(u.Path, "/retrieve") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/retrieve"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: tr}
	}
	return &Client{url: u.String(), opts: opts, http: hc}, nil
}

// URL returns the /retrieve URL the client posts to.
func (c *Client) URL() string { return c.url }

// Search posts queries to the server and returns its hits, one slice per
// query. It retries connection failures, 429 and 5xx answers with
// exponential backoff and jitter (waiting at least what Retry-After asks, up
// to MaxBackoff); a 4xx answer is returned at once, as retrying cannot fix it.
func (c *Client) Search(ctx context.Context, queries []string, topK int) ([][]Hit, error) {
	if len(queries) == 0 {
		return [][]Hit{}, nil
	}
	body, err := json.Marshal(struct {
		Queries      []string `json:"queries"`
		TopK         int      `json:"topk"`
		ReturnScores bool     `json:"return_scores"`
	}{queries, topK, true})
	if err != nil {
		return nil, fmt.Errorf("search %s: encoding request: %w", c.url, err)
	}
	for attempt := 0; ; attempt++ {
		hits, retryAfter, err := c.post(ctx, body, len(queries))
		if err == nil {
			return hits, nil
		}
		var fatal *fatalError
		if errors.As(err, &fatal) || ctx.Err() != nil || attempt >= c.opts.MaxRetries {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("search %s: %w", c.url, ctx.Err())
			}
			return nil, fmt.Errorf("search %s: attempt %d: %w", c.url, attempt+1, err)
		}
		wait := c.backoff(attempt, retryAfter)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("search %s: %w (last error: %v)", c.url, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// backoff is full-range jitter over an exponentially growing window, never
// shorter than the server's Retry-After and never longer than MaxBackoff.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	window := c.opts.BaseBackoff << min(attempt, 30)
	if window <= 0 || window > c.opts.MaxBackoff {
		window = c.opts.MaxBackoff
	}
	wait := window/2 + rand.N(window/2+1)
	if retryAfter > wait {
		wait = retryAfter
	}
	return min(wait, c.opts.MaxBackoff)
}

// fatalError is a failure that retrying cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// post makes one attempt. It returns the Retry-After the server asked for, if any.
func (c *Client) post(ctx context.Context, body []byte, nQueries int) ([][]Hit, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, &fatalError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("status %d: %s", resp.StatusCode, errorMessage(data))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return nil, parseRetryAfter(resp.Header.Get("Retry-After")), err
		}
		return nil, 0, &fatalError{err}
	}
	hits, err := decodeRetrieveResponse(data)
	if err != nil {
		return nil, 0, &fatalError{fmt.Errorf("decoding answer: %w", err)}
	}
	if len(hits) != nQueries {
		return nil, 0, &fatalError{fmt.Errorf("answer has %d result lists for %d queries", len(hits), nQueries)}
	}
	return hits, 0, nil
}

func errorMessage(body []byte) string {
	var e struct {
		Error  string `json:"error"`
		Detail any    `json:"detail"` // FastAPI's error field
	}
	if json.Unmarshal(body, &e) == nil {
		if e.Error != "" {
			return e.Error
		}
		if e.Detail != nil {
			return fmt.Sprint(e.Detail)
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// parseRetryAfter reads the seconds form of Retry-After, or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// wireHit is one element of a result list in either Search-R1 shape:
// {"document": {...}, "score": s} or the document itself.
type wireHit struct {
	Document *wireDocument `json:"document"`
	Score    float64       `json:"score"`
	wireDocument
}

type wireDocument struct {
	ID       flexibleID `json:"id"`
	Contents string     `json:"contents"`
}

// flexibleID accepts a string or a number, since corpora served by other
// retrievers use either.
type flexibleID string

func (f *flexibleID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexibleID(s)
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id: want a string or number, got %s", b)
	}
	*f = flexibleID(n.String())
	return nil
}

func decodeRetrieveResponse(data []byte) ([][]Hit, error) {
	var resp struct {
		Result *[][]wireHit `json:"result"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, err
	}
	if resp.Result == nil {
		return nil, errors.New(`no "result" field`)
	}
	out := make([][]Hit, len(*resp.Result))
	for i, list := range *resp.Result {
		out[i] = make([]Hit, len(list))
		for j, w := range list {
			d := w.wireDocument
			if w.Document != nil {
				d = *w.Document
			}
			out[i][j] = Hit{Document: Document{ID: string(d.ID), Contents: d.Contents}, Score: w.Score}
		}
	}
	return out, nil
}
