package selfplay

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/ssp-project/ssp/internal/agent/agenttest"
	"github.com/ssp-project/ssp/internal/model"
)

// TestRunWithTinyModel plays two steps with a real (random-weight) model, a
// real AdamW trainer and a frozen reference copy, then loads the written
// checkpoint back: the contracts between the game and the model hold end
// to end.
func TestRunWithTinyModel(t *testing.T) {
	dir := agenttest.FixtureDir(t, "qwen2")
	opts := model.LoadOptions{Backend: "go"}
	policy, err := model.Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	reference, err := model.Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Run.Steps, cfg.Run.SaveEvery = 2, 1
	cfg.Game.BatchSize, cfg.Game.SolverRollouts = 2, 2
	cfg.Agent = AgentConfig{MaxTurns: 2, MaxTokensPerTurn: 8, MaxResponseTokens: 16, MaxPromptTokens: 4096,
		TopK: 1, MaxInformationChars: 64}
	cfg.Optim.MicroBatchSize = 4
	trainer, err := model.NewTrainer(policy, cfg.OptimizerConfig())
	if err != nil {
		t.Fatal(err)
	}
	g := &Game{
		Config: cfg, Policy: policy, Reference: reference, Learner: trainer,
		Tokenizer: agenttest.ByteTokenizer{}, EOSTokenIDs: []int32{agenttest.ByteEOS},
		// Short prompts keep the test fast; the protocol text is not needed
		// by a random model.
		Chat:     func(system, user string) (string, error) { return user, nil },
		Searcher: &agenttest.MemorySearcher{Docs: worldDocs}, Seeds: worldSeeds,
		// A random model writes no valid question: the pool keeps the
		// solver busy. TestStepRewardsAndAdvantages plays valid questions
		// with scripted rollouts and checks their rewards.
		Pool: &ProblemPool{Problems: []Problem{{Question: poolQuestion, Answers: []string{"Brenn"}}}},
	}
	out := t.TempDir()
	rd, err := OpenRunDir(out, cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	r := &Runner{Game: g, Dir: rd, Model: policy, Optimizer: trainer}
	if err := r.Run(context.Background(), 1, 2); err != nil {
		t.Fatal(err)
	}
	rows := readLines(t, filepath.Join(out, "metrics.jsonl"))
	if len(rows) != 2 {
		t.Fatalf("%d metrics lines", len(rows))
	}
	for _, key := range []string{"policy_loss", "kl", "entropy", "tokens_trained"} {
		v, ok := rows[1][key].(float64)
		if !ok || math.IsNaN(v) {
			t.Fatalf("%s = %v", key, rows[1][key])
		}
	}
	if rows[1]["tokens_trained"].(float64) == 0 || rows[1]["solver_rollouts"].(float64) != 4 {
		t.Fatalf("step 2 metrics: %v", rows[1])
	}
	ckpt, step, err := LatestCheckpoint(out)
	if err != nil || step != 2 {
		t.Fatalf("LatestCheckpoint: %d, %v", step, err)
	}
	// Resuming: the checkpoint's weights and optimizer state load back.
	resumed, err := model.Load(ckpt, opts)
	if err != nil {
		t.Fatalf("checkpoint does not load: %v", err)
	}
	resumedTrainer, err := model.NewTrainer(resumed, cfg.OptimizerConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := resumedTrainer.LoadState(filepath.Join(ckpt, "optimizer")); err != nil {
		t.Fatalf("optimizer state does not load: %v", err)
	}
	if resumedTrainer.Step() != trainer.Step() || trainer.Step() == 0 {
		t.Fatalf("optimizer steps: resumed %d, trained %d", resumedTrainer.Step(), trainer.Step())
	}
}
