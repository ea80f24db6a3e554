package serve

import (
	"strings"
	"testing"
)

// FuzzParseChat feeds request bodies to the parser: it never panics, and
// either refuses the body with a 4xx error or returns a request the
// model can run — a chat prompt whose new tokens fit the server's bound
// and the model's context, or a non-empty question for the agent.
//
// Mutation seen to fail it: dropping the context check (the long-prompt
// seed then asks for more tokens than the context holds).
func FuzzParseChat(f *testing.F) {
	for _, seed := range []string{
		`{"model":"builtin","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"builtin-agent","messages":[{"role":"user","content":"Where was Fedi Lisegi born?"}],"stream":true}`,
		`{"model":"builtin","agent":true,"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"q"}]}]}`,
		`{"model":"builtin","messages":[{"role":"developer","content":"x"}],"stop":["a","b"],"temperature":0.5,"top_p":0.9,"seed":-3}`,
		`{"model":"builtin","messages":[],"n":1}`,
		`{"model":1}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	// Long prompts that leave less room in the context than they ask for.
	for _, words := range []int{500, 1000, 1500, 2000, 3000} {
		f.Add([]byte(`{"model":"builtin","messages":[{"role":"user","content":"` + strings.Repeat("word ", words) + `"}],"max_tokens":1400}`))
	}
	m := testModel(f, "builtin", 1, 1)
	cfg := DefaultConfig()
	cfg.MaxTokens = 1500
	s, err := NewServer([]*Model{m}, cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		call, apiErr := s.parseChat(body)
		if apiErr != nil {
			if call != nil || apiErr.status < 400 || apiErr.status >= 500 || apiErr.Message == "" {
				t.Fatalf("error %+v with call %v", apiErr, call)
			}
			return
		}
		r := call.req
		switch {
		case r.Agent && strings.TrimSpace(r.Question) == "":
			t.Fatal("agent request with an empty question")
		case r.Agent && (r.MaxTokens < 0 || r.MaxTokens > m.AgentResponseTokens()):
			t.Fatalf("agent budget %d", r.MaxTokens)
		case !r.Agent && (len(r.Prompt) == 0 || r.MaxTokens < 1 || r.MaxTokens > cfg.MaxTokens):
			t.Fatalf("chat request: %d prompt tokens, %d new", len(r.Prompt), r.MaxTokens)
		case !r.Agent && len(r.Prompt)+r.MaxTokens > m.cfg.MaxContext:
			t.Fatalf("chat request: %d prompt tokens and %d new exceed the context of %d", len(r.Prompt), r.MaxTokens, m.cfg.MaxContext)
		}
	})
}
