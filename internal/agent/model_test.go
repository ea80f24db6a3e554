package agent

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/agent/agenttest"
	"github.com/ssp-project/ssp/internal/model"
)

// TestRunWithTinyModel drives the loop with a real (random-weight) model:
// the log-probs recorded while sampling must equal the ones the model
// assigns to the finished sequences, which is what makes the first PPO
// ratio exactly 1 — it fails if the loop re-tokenised or misaligned
// anything.
func TestRunWithTinyModel(t *testing.T) {
	m, err := model.Load(agenttest.FixtureDir(t, "qwen2"), model.LoadOptions{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	tok := agenttest.ByteTokenizer{}
	// Random weights rarely write tags; a searcher is still wired in.
	searcher := &agenttest.MemorySearcher{Docs: testDocs}
	cfg := Config{FinalTag: "answer", Search: true, MaxTurns: 2, MaxTokensPerTurn: 12, MaxResponseTokens: 20,
		TopK: 1, MaxInformationChars: 100, Temperature: 0.7, Seed: 7, EOSTokenIDs: []int32{agenttest.ByteEOS}}
	prompts := [][]int32{tok.Encode("Q: where is Osk?"), tok.Encode("Q: who?")}
	trajs, err := Run(context.Background(), m, tok, searcher, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([][]int32, len(trajs))
	for i, tr := range trajs {
		seqs[i] = tr.Tokens
		if tr.GeneratedTokens == 0 || tr.Finish == "" {
			t.Fatalf("trajectory %d: %d tokens, finish %q", i, tr.GeneratedTokens, tr.Finish)
		}
	}
	// The rollout's log-probs are those of the sampling distribution (T = 0.7).
	scored, err := m.TokenLogProbs(context.Background(), seqs, []float32{0.7, 0.7})
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range trajs {
		for k, mask := range tr.LossMask {
			if mask == 0 {
				continue
			}
			if d := math.Abs(float64(scored[i][k] - tr.LogProbs[k])); d > 1e-3 {
				t.Fatalf("trajectory %d token %d: sampled log-prob %v, scored %v", i, k, tr.LogProbs[k], scored[i][k])
			}
		}
	}
}

// TestRunReusesPrefixes checks that the loop with kept caches (the model
// as given) plays the same trajectories as with every turn re-encoded.
// Random weights would never write a search call, so the test tokenizer
// decodes every id of the upper half of the vocabulary as a whole call:
// most turns end in a search and the trajectories grow over four turns.
func TestRunReusesPrefixes(t *testing.T) {
	m, err := model.Load(agenttest.FixtureDir(t, "llama3"), model.LoadOptions{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := searchingTokenizer{}
	searcher := &agenttest.MemorySearcher{Docs: testDocs}
	cfg := Config{FinalTag: "answer", Search: true, MaxTurns: 4, MaxTokensPerTurn: 10, MaxResponseTokens: 400,
		TopK: 1, MaxInformationChars: 40, Temperature: 1, Seed: 3, EOSTokenIDs: []int32{agenttest.ByteEOS}}
	prompts := [][]int32{tok.Encode("Q: where is Osk?"), tok.Encode("Q: who?"), tok.Encode("Q")}
	ctx := context.Background()
	cached, err := Run(ctx, m, tok, searcher, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Run(ctx, agenttest.WithoutSessions{Model: m}, tok, searcher, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	turns := 0
	for i := range plain {
		turns = max(turns, plain[i].Turns)
		if !slices.Equal(cached[i].Tokens, plain[i].Tokens) || cached[i].Finish != plain[i].Finish {
			t.Fatalf("trajectory %d: with kept caches %v (%s), re-encoded %v (%s)", i,
				cached[i].Tokens, cached[i].Finish, plain[i].Tokens, plain[i].Finish)
		}
		for k := range plain[i].LogProbs {
			if d := math.Abs(float64(cached[i].LogProbs[k] - plain[i].LogProbs[k])); d > 1e-4 {
				t.Fatalf("trajectory %d token %d: log-prob %g with kept caches, %g re-encoded", i, k,
					cached[i].LogProbs[k], plain[i].LogProbs[k])
			}
		}
	}
	if turns < 3 {
		t.Fatalf("no trajectory reached a second turn; the test exercises nothing")
	}
}

type searchingTokenizer struct{ agenttest.ByteTokenizer }

func (searchingTokenizer) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		switch {
		case id >= 512:
			b.WriteString("<search>Osk</search>")
		case id < 256:
			b.WriteByte(byte(id))
		}
	}
	return b.String()
}
