package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// qwen7BConfig is Qwen2.5-7B's config.json, the fields the plan reads.
const qwen7BConfig = `{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
	"intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
	"vocab_size": 152064, "max_position_embeddings": 131072, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06,
	"tie_word_embeddings": false, "torch_dtype": "bfloat16", "hidden_act": "silu"}`

// plan runs `ssp train --plan` with args and returns what it printed.
func plan(t *testing.T, args ...string) string {
	t.Helper()
	out, code := captureStdout(t, func() int {
		if err := runTrain(t.Context(), append([]string{"--plan"}, args...)); err != nil {
			t.Errorf("train --plan %v: %v", args, err)
			return 1
		}
		return 0
	})
	if code != 0 {
		t.FailNow()
	}
	return out
}

// The plan needs only config.json (the directory here has no weights), for
// a model directory and for the built-in default (nothing is prepared).
// Given a device too small, it names changes, and the plan with those
// changes fits. Mutations seen to fail: fitPlan keeping no change (no
// fit found); the search that may switch to LoRA skipped (no fit for 7B
// full fine-tuning on 141 GB).
func TestTrainPlan(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("SSP_CACHE", cache)
	out := plan(t)
	for _, want := range []string{"memory plan of the built-in model", "weights", "AdamW moments", "attention: layers", "KV cache", "total:"} {
		if !strings.Contains(out, want) {
			t.Errorf("built-in plan lacks %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("--plan prepared the built-in default: %v", entries)
	}

	dir := filepath.Join(t.TempDir(), "qwen7b")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(qwen7BConfig), 0o644)
	out = plan(t, "--model", dir, "--gpu-memory", "141GB")
	for _, want := range []string{"7.62B parameters", "does not fit", "full fine-tuning does not fit", "8-bit AdamW", "cheapest change that fits"} {
		if !strings.Contains(out, want) {
			t.Errorf("7B plan lacks %q:\n%s", want, out)
		}
	}
	_, changes, ok := strings.Cut(out, "cheapest change that fits")
	if !ok {
		t.FailNow()
	}
	_, changes, _ = strings.Cut(changes, ": ")
	changes, _, _ = strings.Cut(changes, "\n")
	again := plan(t, append([]string{"--model", dir, "--gpu-memory", "141GB"}, strings.Fields(changes)...)...)
	if !strings.Contains(again, "fits,") {
		t.Errorf("with the suggested %s the plan does not fit:\n%s", changes, again)
	}
	if err := runTrain(t.Context(), []string{"--model", dir, "--gpu-memory", "80GB"}); err == nil {
		t.Error("--gpu-memory without --plan was accepted")
	}
}
