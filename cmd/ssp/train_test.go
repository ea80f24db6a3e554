package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTrainUsage(t *testing.T) {
	ctx := context.Background()
	t.Setenv("SSP_CACHE", t.TempDir())
	for _, args := range [][]string{
		{"--steps", "-1"},
		{"--game.batch_size", "0"},
		{"--no-such-flag"},
		{"extra"},
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
	for _, f := range []string{"metrics.jsonl", "config.yaml", "rollouts/step-1.jsonl", "checkpoints/step-1/model.safetensors", "checkpoints/step-1/tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
