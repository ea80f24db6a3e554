package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/model"
)

func TestTrainUsage(t *testing.T) {
	ctx := context.Background()
	t.Setenv("SSP_CACHE", t.TempDir())
	for _, args := range [][]string{
		{"--steps", "-1"},
		{"--game.batch_size", "0"},
		{"--no-such-flag"},
		{"extra"},
		{"--model", "m", "--steps", "-1"},
		{"--config", filepath.Join(t.TempDir(), "missing.yaml")},
	} {
		if err := runTrain(ctx, args); !errors.Is(err, errUsage) {
			t.Errorf("train %q: err = %v, want a usage error", args, err)
		}
	}
	// A usage error must not have built the default.
	if entries, _ := os.ReadDir(os.Getenv("SSP_CACHE")); len(entries) != 0 {
		t.Errorf("cache written on a usage error: %v", entries)
	}
}

// TestTrainBuiltinStep runs one self-play step of the built-in default and
// checks the run directory.
func TestTrainBuiltinStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a self-play step")
	}
	t.Setenv("GOMLX_BACKEND", "go")
	t.Setenv("SSP_CACHE", t.TempDir())
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--steps", "1", "--out", out, "--game.batch_size", "2", "--agent.max_turns", "1", "--agent.max_tokens_per_turn", "8"}
	if err := runTrain(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"metrics.jsonl", "config.yaml", "provenance.jsonl", "rollouts/step-1.jsonl", "checkpoints/step-1/model.safetensors", "checkpoints/step-1/tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	var prov trainProvenance
	if data, err := os.ReadFile(filepath.Join(out, "provenance.jsonl")); err != nil || json.Unmarshal(data, &prov) != nil ||
		prov.Code == "" || prov.Command == "" || prov.Model == "" || prov.Index == "" || prov.Seeds == "" || prov.Backend != "go" {
		t.Errorf("provenance.jsonl: %+v (%v)", prov, err)
	}
	// metrics.jsonl: one line for step 1, every figure finite and in range.
	data, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("metrics.jsonl has %d lines, want 1", len(lines))
	}
	var row map[string]*float64
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
		t.Fatal(err)
	}
	get := func(k string) float64 {
		v, ok := row[k]
		if !ok || v == nil {
			t.Errorf("metrics: %s missing or not a number", k)
			return math.NaN()
		}
		return *v
	}
	if get("step") != 1 {
		t.Errorf("metrics: step %v, want 1", get("step"))
	}
	if v := get("proposer_reward"); !(v >= -1 && v <= 1) { // -1 for an invalid question
		t.Errorf("metrics: proposer_reward = %v, want [-1, 1]", v)
	}
	for _, k := range []string{"valid_question_rate", "solver_accuracy", "clip_fraction"} {
		if v := get(k); !(v >= 0 && v <= 1) {
			t.Errorf("metrics: %s = %v, want a fraction", k, v)
		}
	}
	for _, k := range []string{"tokens_generated", "tokens_trained", "step_seconds", "lr"} {
		if v := get(k); !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("metrics: %s = %v, want > 0", k, v)
		}
	}
	for _, k := range []string{"loss", "kl", "entropy", "grad_norm"} {
		if v := get(k); math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("metrics: %s = %v, want a finite number", k, v)
		}
	}
	// The checkpoint loads and gives the same log-probabilities twice, and
	// its trainer state names step 1.
	ckpt := filepath.Join(out, "checkpoints", "step-1")
	var state struct{ Step int }
	if data, err := os.ReadFile(filepath.Join(ckpt, "trainer_state.json")); err != nil || json.Unmarshal(data, &state) != nil || state.Step != 1 {
		t.Errorf("trainer_state.json: step %d (%v)", state.Step, err)
	}
	seq := [][]int32{{1, 2, 3, 4, 5, 6}}
	var first []float32
	for i := range 2 {
		m, err := model.Load(ckpt, model.LoadOptions{Backend: "go"})
		if err != nil {
			t.Fatal(err)
		}
		lp, err := m.TokenLogProbs(context.Background(), seq, nil)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(lp) != 1 || len(lp[0]) == 0 {
			t.Fatalf("log-probs %v", lp)
		}
		for _, v := range lp[0] {
			if !(v <= 0) {
				t.Fatalf("log-prob %v", v)
			}
		}
		if i == 0 {
			first = lp[0]
		} else if !slices.Equal(first, lp[0]) {
			t.Errorf("the checkpoint gives %v, then %v", first, lp[0])
		}
	}
	// A model without --index or --seeds trains on the built-in world.
	out2 := filepath.Join(t.TempDir(), "run2")
	args = []string{"--model", filepath.Join(out, "checkpoints", "step-1"), "--steps", "1", "--out", out2,
		"--game.batch_size", "2", "--agent.max_turns", "1", "--agent.max_tokens_per_turn", "8", "--agent.max_response_tokens", "64"}
	stderr, _ := captureStderr(t, func() int {
		if err := runTrain(context.Background(), args); err != nil {
			t.Error(err)
		}
		return 0
	})
	if !strings.Contains(stderr, "built-in world's index") || !strings.Contains(stderr, "built-in world's seeds") {
		t.Errorf("the defaults taken are not named on stderr:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(out2, "checkpoints", "step-1", "model.safetensors")); err != nil {
		t.Error(err)
	}
}
