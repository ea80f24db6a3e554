package agent

import (
	"context"
	"math"
	"os"
	"path/filepath"
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
	dir := filepath.Join("..", "..", "..", "shared", "fixtures", "hf", "qwen2")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		t.Skipf("tiny checkpoint not available (%v); it lives in the shared fixtures beside the checkout", err)
	}
	m, err := model.Load(dir, model.LoadOptions{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	tok := agenttest.ByteTokenizer{}
	// Random weights rarely write tags; a searcher is still wired in.
	searcher := &agenttest.MemorySearcher{Docs: testDocs}
	cfg := Config{FinalTag: "answer", Search: true, MaxTurns: 2, MaxTokensPerTurn: 12, MaxResponseTokens: 20,
		TopK: 1, MaxInformationChars: 100, Temperature: 1, Seed: 7, EOSTokenIDs: []int32{agenttest.ByteEOS}}
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
	scored, err := m.TokenLogProbs(context.Background(), seqs)
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
