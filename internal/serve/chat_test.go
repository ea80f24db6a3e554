package serve

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/tokenizer"
)

// TestChatCompletion checks a plain chat completion: the prompt is the chat
// template's rendering, max_tokens and ignore_eos bound it exactly, a
// seed makes it reproducible, and streaming it yields the same text as
// content deltas, a finish reason and, when asked, the usage.
//
// Mutations seen to fail it: encoding the last message alone instead of
// the template's rendering (prompt_tokens); dropping the row's Seed
// (seeds 7 and 8 then sample the same text); doubling each streamed
// content delta.
func TestChatCompletion(t *testing.T) {
	ts := startServer(t, 4, 4, nil)
	body := func() map[string]any {
		return userChat("Where is Veroma?", map[string]any{"max_tokens": 24, "seed": 7, "temperature": 1, "ignore_eos": true})
	}
	c := ts.complete(t, body())
	want, _ := fixture.tok.ApplyChatTemplate([]tokenizer.Message{{Role: "user", Content: "Where is Veroma?"}}, true)
	if got, wantLen := c.Usage.PromptTokens, len(fixture.tok.Encode(want)); got != wantLen {
		t.Errorf("prompt_tokens %d, want %d (the chat template's rendering)", got, wantLen)
	}
	if c.Usage.CompletionTokens != 24 || c.Usage.TotalTokens != c.Usage.PromptTokens+24 || c.Choices[0].FinishReason != "length" {
		t.Errorf("usage %+v, finish %q: want 24 completion tokens ending on length", c.Usage, c.Choices[0].FinishReason)
	}
	if c.Model != "builtin" || c.Choices[0].Message.Content == "" || c.SSP != nil {
		t.Errorf("model %q, content %q, ssp %v", c.Model, c.Choices[0].Message.Content, c.SSP)
	}
	if again := ts.complete(t, body()); again.Choices[0].Message.Content != c.Choices[0].Message.Content {
		t.Errorf("same seed, different text: %q then %q", c.Choices[0].Message.Content, again.Choices[0].Message.Content)
	}
	other := body()
	other["seed"] = 8
	if o := ts.complete(t, other); o.Choices[0].Message.Content == c.Choices[0].Message.Content {
		t.Errorf("seeds 7 and 8 sampled the same text %q", o.Choices[0].Message.Content)
	}

	sb := body()
	sb["stream_options"] = map[string]any{"include_usage": true}
	chunks := ts.stream(t, sb)
	var text strings.Builder
	var finish string
	for i, ch := range chunks {
		if ch.Usage != nil {
			if i != len(chunks)-1 || len(ch.Choices) != 0 || ch.Usage.CompletionTokens != 24 {
				t.Errorf("usage chunk %d of %d: %+v", i, len(chunks), ch)
			}
			continue
		}
		if ch.Choices[0].Delta.Content != nil {
			text.WriteString(*ch.Choices[0].Delta.Content)
		}
		if f := ch.Choices[0].FinishReason; f != nil {
			finish = *f
			if i != len(chunks)-2 {
				t.Errorf("finish reason in chunk %d of %d", i, len(chunks))
			}
		}
	}
	if text.String() != c.Choices[0].Message.Content || finish != "length" {
		t.Errorf("streamed %q (finish %q), not streamed %q (length)", text.String(), finish, c.Choices[0].Message.Content)
	}
}

// TestChatStop checks that a stop string ends the completion and is not
// part of its text, streamed or not, even when it arrives split over
// several tokens.
//
// Mutations seen to fail it: keeping the text up to the end of the stop
// string (cutAtStop returning text); streaming a possible stop prefix
// without holding it back (stopPrefixSuffix returning 0).
func TestChatStop(t *testing.T) {
	ts := startServer(t, 4, 4, nil)
	body := func() map[string]any {
		return userChat("Who founded the Goba Guild?", map[string]any{"max_tokens": 40, "seed": 3, "ignore_eos": true})
	}
	free := ts.complete(t, body()).Choices[0].Message.Content
	// A stop string from the middle of the free text, where it occurs first.
	var stop string
	for at := len(free) / 3; at+4 <= len(free); at++ {
		cand := free[at : at+4]
		if strings.Index(free, cand) == at && !strings.ContainsRune(cand, '\uFFFD') {
			stop = cand
			break
		}
	}
	if stop == "" {
		t.Fatalf("no stop string to cut %q at", free)
	}
	want := free[:strings.Index(free, stop)]
	sb := body()
	sb["stop"] = []string{"never in the text", stop}
	c := ts.complete(t, sb)
	if got := c.Choices[0].Message.Content; got != want || c.Choices[0].FinishReason != "stop" {
		t.Errorf("stop %q: got %q (finish %q), want %q (stop)", stop, got, c.Choices[0].FinishReason, want)
	}
	var text strings.Builder
	for _, ch := range ts.stream(t, sb) {
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != nil {
			text.WriteString(*ch.Choices[0].Delta.Content)
		}
	}
	if text.String() != want {
		t.Errorf("stop %q streamed: got %q, want %q", stop, text.String(), want)
	}
}

// TestBadRequests checks that a bad request gets an OpenAI-style error
// naming the field, with a 4xx status, before any work is queued.
//
// Mutations seen to fail it: accepting temperature above 2; not naming
// the param of a bad message role; answering an unknown model with 400.
func TestBadRequests(t *testing.T) {
	ts := startServer(t, 1, 1, func(c *Config) { c.MaxBodyBytes = 4096; c.MaxTokens = 512 })
	msgs := []map[string]any{{"role": "user", "content": "hi"}}
	long := strings.Repeat("word ", 3000)
	cases := []struct {
		name   string
		body   any
		status int
		param  string
		code   string
	}{
		{"invalid JSON", []byte(`{"model": `), 400, "", ""},
		{"not an object", []int{1}, 400, "", ""},
		{"no model", map[string]any{"messages": msgs}, 400, "model", ""},
		{"unknown model", map[string]any{"model": "gpt-4", "messages": msgs}, 404, "model", "model_not_found"},
		{"no messages", map[string]any{"model": "builtin"}, 400, "messages", ""},
		{"bad role", map[string]any{"model": "builtin", "messages": []map[string]any{{"role": "tool", "content": "x"}}}, 400, "messages[0].role", ""},
		{"image part", map[string]any{"model": "builtin", "messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "image_url"}}}}}, 400, "messages[0].content", ""},
		{"content type", map[string]any{"model": "builtin", "messages": []map[string]any{{"role": "user", "content": 5}}}, 400, "messages[0].content", ""},
		{"temperature", map[string]any{"model": "builtin", "messages": msgs, "temperature": 2.5}, 400, "temperature", ""},
		{"temperature type", map[string]any{"model": "builtin", "messages": msgs, "temperature": "hot"}, 400, "temperature", ""},
		{"top_p", map[string]any{"model": "builtin", "messages": msgs, "top_p": 0}, 400, "top_p", ""},
		{"top_k", map[string]any{"model": "builtin", "messages": msgs, "top_k": -1}, 400, "top_k", ""},
		{"n", map[string]any{"model": "builtin", "messages": msgs, "n": 2}, 400, "n", ""},
		{"max_tokens", map[string]any{"model": "builtin", "messages": msgs, "max_tokens": 0}, 400, "max_tokens", ""},
		{"max_tokens over the server's", map[string]any{"model": "builtin", "messages": msgs, "max_tokens": 513}, 400, "max_tokens", ""},
		{"stop list", map[string]any{"model": "builtin", "messages": msgs, "stop": []string{"a", "b", "c", "d", "e"}}, 400, "stop", ""},
		{"stop empty", map[string]any{"model": "builtin", "messages": msgs, "stop": ""}, 400, "stop", ""},
		{"logprobs", map[string]any{"model": "builtin", "messages": msgs, "logprobs": true}, 400, "logprobs", ""},
		{"tools", map[string]any{"model": "builtin", "messages": msgs, "tools": []map[string]any{{"type": "function"}}}, 400, "tools", ""},
		{"stream_options without stream", map[string]any{"model": "builtin", "messages": msgs, "stream_options": map[string]any{"include_usage": true}}, 400, "stream_options", ""},
		{"agent false on an agent", map[string]any{"model": "builtin-agent", "messages": msgs, "agent": false}, 400, "agent", ""},
		{"agent on an assistant message", map[string]any{"model": "builtin-agent", "messages": []map[string]any{{"role": "assistant", "content": "x"}}}, 400, "messages", ""},
		{"agent stop", map[string]any{"model": "builtin", "agent": true, "messages": msgs, "stop": "x"}, 400, "stop", ""},
		{"agent budget", map[string]any{"model": "builtin-agent", "messages": msgs, "max_tokens": 100000}, 400, "max_tokens", ""},
		{"body too large", map[string]any{"model": "builtin", "messages": []map[string]any{{"role": "user", "content": long}}}, 413, "", ""},
	}
	for _, tc := range cases {
		status, _, data := ts.post(t, "/v1/chat/completions", tc.body)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, status, tc.status, data)
			continue
		}
		e := errorBody(t, data)
		if e.Message == "" || e.Type != "invalid_request_error" {
			t.Errorf("%s: error %s", tc.name, data)
		}
		gotParam, gotCode := "", ""
		if e.Param != nil {
			gotParam = *e.Param
		}
		if e.Code != nil {
			gotCode = *e.Code
		}
		if gotParam != tc.param || gotCode != tc.code {
			t.Errorf("%s: param %s code %s, want %q and %q: %s", tc.name, str(e.Param), str(e.Code), tc.param, tc.code, data)
		}
	}
	if d := ts.model.generatedTokens.Load(); d != 0 {
		t.Errorf("bad requests generated %d tokens", d)
	}

	resp, err := http.Get(ts.url + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /v1/chat/completions: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if status, data := ts.get(t, "/v2/anything"); status != http.StatusNotFound || errorBody(t, data).Message == "" {
		t.Errorf("unknown path: %d %s", status, data)
	}
}

// TestModelsAndHealth checks GET /v1/models, /v1/models/{id}, /healthz
// and the page at /.
//
// Mutation seen to fail it: listing only the plain model.
func TestModelsAndHealth(t *testing.T) {
	ts := startServer(t, 1, 1, nil)
	status, data := ts.get(t, "/v1/models")
	var list struct {
		Object string      `json:"object"`
		Data   []modelInfo `json:"data"`
	}
	if err := json.Unmarshal(data, &list); status != 200 || err != nil || list.Object != "list" {
		t.Fatalf("models: %d %v %s", status, err, data)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy == "" {
			t.Errorf("entry %+v", m)
		}
	}
	if strings.Join(ids, ",") != "builtin,builtin-agent" {
		t.Errorf("models %v, want builtin and builtin-agent", ids)
	}
	status, data = ts.get(t, "/v1/models/builtin-agent")
	var one modelInfo
	if err := json.Unmarshal(data, &one); status != 200 || err != nil || one.ID != "builtin-agent" || one.SSP["mode"] != "agent" || one.SSP["prompts"] != "minimal" {
		t.Errorf("builtin-agent: %d %s", status, data)
	}
	if status, data := ts.get(t, "/v1/models/nope"); status != 404 || *errorBody(t, data).Code != "model_not_found" {
		t.Errorf("unknown model: %d %s", status, data)
	}
	if status, data := ts.get(t, "/healthz"); status != 200 || !strings.Contains(string(data), `"ok"`) {
		t.Errorf("healthz: %d %s", status, data)
	}
	status, data = ts.get(t, "/")
	if status != 200 || !strings.Contains(string(data), "/v1/chat/completions") || !strings.Contains(string(data), "<form") {
		t.Errorf("page: %d, %d bytes", status, len(data))
	}
}

// TestAuth checks that with an API key every /v1 request needs it as a
// bearer token, and that /healthz and /metrics stay open for probes.
//
// Mutation seen to fail it: comparing only the key's prefix.
func TestAuth(t *testing.T) {
	ts := startServer(t, 1, 1, func(c *Config) { c.APIKey = "s3cret" })
	body := userChat("hi", map[string]any{"max_tokens": 2})
	for _, header := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "Bearer s3cre"},
		{"Authorization", "Bearer s3cret-and-more"}, {"Authorization", "s3cret"}} {
		status, h, data := ts.post(t, "/v1/chat/completions", body, header...)
		if status != http.StatusUnauthorized || *errorBody(t, data).Code != "invalid_api_key" || h.Get("WWW-Authenticate") == "" {
			t.Errorf("header %v: %d %s", header, status, data)
		}
	}
	if status, _ := ts.get(t, "/v1/models"); status != http.StatusUnauthorized {
		t.Errorf("/v1/models without the key: %d", status)
	}
	if status, _, data := ts.post(t, "/v1/chat/completions", body, "Authorization", "Bearer s3cret"); status != 200 {
		t.Errorf("with the key: %d %s", status, data)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		if status, _ := ts.get(t, p); status != 200 {
			t.Errorf("%s: %d without the key", p, status)
		}
	}
}
