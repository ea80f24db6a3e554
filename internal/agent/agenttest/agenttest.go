// Package agenttest provides deterministic stand-ins for the policy, the
// tokenizer and the search engine, so the agent loop and the self-play step
// can be tested without a neural network, and the helpers the tests with a
// real tiny model share. Only tests import it.
package agenttest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/search"

	"github.com/ssp-project/ssp/internal/fixtures"
)

// EOS is the end-of-sequence id of CharTokenizer.
const EOS int32 = 0

// CharTokenizer maps each character to its code point: Encode and Decode are
// exact inverses, which makes token/text alignment easy to check.
type CharTokenizer struct{}

// Encode returns one id per character.
func (CharTokenizer) Encode(text string) []int32 {
	ids := make([]int32, 0, len(text))
	for _, r := range text {
		ids = append(ids, int32(r))
	}
	return ids
}

// Decode maps ids back to characters, skipping EOS.
func (CharTokenizer) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if id != EOS {
			b.WriteRune(rune(id))
		}
	}
	return b.String()
}

// ScriptedPolicy continues each prompt with the text Reply returns for the
// prompt's decoded text, honouring stop strings, EOS and MaxNewTokens the
// way the real engine does. Every sampled token gets log-prob LogProb.
type ScriptedPolicy struct {
	Reply func(prompt string) string
	// LogProb is reported for every generated token and by TokenLogProbs.
	LogProb float32

	mu       sync.Mutex
	Requests []model.GenerateRequest // every request, for inspection
	// ScoredTemperatures holds the temperatures of every TokenLogProbs call.
	ScoredTemperatures [][]float32
}

// Generate implements the policy's sampling contract.
func (p *ScriptedPolicy) Generate(ctx context.Context, req model.GenerateRequest) ([]model.Generation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.Requests = append(p.Requests, req)
	p.mu.Unlock()
	tok := CharTokenizer{}
	out := make([]model.Generation, len(req.Prompts))
	for i, prompt := range req.Prompts {
		reply := tok.Encode(p.Reply(tok.Decode(prompt)))
		reply = append(reply, EOS)
		var g model.Generation
		for _, id := range reply {
			if len(g.Tokens) == req.MaxNewTokens {
				g.FinishReason = "length"
				break
			}
			g.Tokens = append(g.Tokens, id)
			g.LogProbs = append(g.LogProbs, p.LogProb)
			if req.OnToken != nil {
				req.OnToken(i, id)
			}
			if id == EOS {
				g.FinishReason = "eos"
				break
			}
			if text := req.Decode(g.Tokens); containsAny(text, req.StopStrings) {
				g.FinishReason = "stop"
				break
			}
		}
		out[i] = g
	}
	return out, nil
}

// TokenLogProbs reports LogProb for every token but the first, and records
// the temperatures it was asked to score at.
func (p *ScriptedPolicy) TokenLogProbs(ctx context.Context, seqs [][]int32, temperatures []float32) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.ScoredTemperatures = append(p.ScoredTemperatures, temperatures)
	p.mu.Unlock()
	out := make([][]float32, len(seqs))
	for i, s := range seqs {
		out[i] = make([]float32, len(s))
		for t := 1; t < len(s); t++ {
			out[i][t] = p.LogProb
		}
	}
	return out, nil
}

func containsAny(text string, subs []string) bool {
	for _, s := range subs {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// MemorySearcher ranks its documents by how many distinct query words they
// contain (case-insensitive); ties keep corpus order.
type MemorySearcher struct {
	Docs []search.Document
	// Err, when set, is returned by every call.
	Err error

	mu    sync.Mutex
	Calls [][]string // the query batches received
}

// Search implements search.Searcher.
func (s *MemorySearcher) Search(ctx context.Context, queries []string, topK int) ([][]search.Hit, error) {
	s.mu.Lock()
	s.Calls = append(s.Calls, append([]string(nil), queries...))
	s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	if topK < 1 {
		return nil, fmt.Errorf("memory searcher: topK %d < 1", topK)
	}
	out := make([][]search.Hit, len(queries))
	for qi, q := range queries {
		words := strings.Fields(strings.ToLower(q))
		var hits []search.Hit
		for _, d := range s.Docs {
			text := strings.ToLower(d.Contents)
			score := 0
			for _, w := range words {
				if strings.Contains(text, w) {
					score++
				}
			}
			if score > 0 {
				hits = append(hits, search.Hit{Document: d, Score: float64(score)})
			}
		}
		sort.SliceStable(hits, func(a, b int) bool { return hits[a].Score > hits[b].Score })
		if len(hits) > topK {
			hits = hits[:topK]
		}
		out[qi] = hits
	}
	return out, nil
}

// ByteTokenizer maps each byte to its value and reserves ByteEOS: it fits
// any model with a vocabulary of at least 257 entries, such as the tiny
// random-weight test checkpoints.
type ByteTokenizer struct{}

// ByteEOS is ByteTokenizer's end-of-sequence id.
const ByteEOS int32 = 256

// Encode returns one id per byte.
func (ByteTokenizer) Encode(text string) []int32 {
	ids := make([]int32, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int32(text[i])
	}
	return ids
}

// Decode maps byte ids back to bytes and drops every other id.
func (ByteTokenizer) Decode(ids []int32) string {
	b := make([]byte, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && id < 256 {
			b = append(b, byte(id))
		}
	}
	return string(b)
}

// WithoutSessions hides a model's sessions from the agent loop, so every
// turn re-encodes its whole prompt: the reference that prefix reuse is
// checked and measured against.
type WithoutSessions struct{ Model *model.Model }

// Generate calls the model's Generate.
func (w WithoutSessions) Generate(ctx context.Context, req model.GenerateRequest) ([]model.Generation, error) {
	return w.Model.Generate(ctx, req)
}

// FixtureDir returns the directory of a tiny HF checkpoint of the shared
// fixtures beside the checkout (qwen2, qwen3, llama3), skipping the test
// when it is not there.
func FixtureDir(t testing.TB, name string) string {
	t.Helper()
	dir := fixtures.Shared(t, "hf", name)
	fixtures.Shared(t, "hf", name, "config.json")
	return dir
}
