package gguf

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssp-project/ssp/internal/safetensors"

	"github.com/ssp-project/ssp/internal/fixtures"
)

// TestImportSmolLM2 imports the real SmolLM2-135M-Instruct GGUF (Q4_1, with
// Q8_0 embeddings) and compares every tensor with what llama.cpp's `gguf`
// package dequantises it to. The assets come from scripts/fetch_smollm2.sh.
func TestImportSmolLM2(t *testing.T) {
	const fetch = "scripts/fetch_smollm2.sh"
	src := fixtures.Asset(t, fetch, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
	refDir := fixtures.Asset(t, fetch, "smollm2", "reference")
	fixtures.Asset(t, fetch, "smollm2", "reference", "reference.safetensors")
	fixtures.Asset(t, fetch, "smollm2", "reference", "meta.json")
	out := filepath.Join(t.TempDir(), "smollm2")
	start := time.Now()
	if err := Import(context.Background(), src, out, ImportOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	t.Logf("import took %v", time.Since(start).Round(time.Millisecond))
	got, err := safetensors.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := safetensors.ReadFile(filepath.Join(refDir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ref) {
		t.Errorf("%d tensors, reference has %d", len(got), len(ref))
	}
	var maxErr float64
	var elems int
	for name, r := range ref {
		g := got[name]
		if g == nil {
			t.Errorf("missing %s", name)
			continue
		}
		gv, _ := g.Float32()
		rv, _ := r.Float32()
		if len(gv) != len(rv) || len(g.Shape) != len(r.Shape) {
			t.Errorf("%s: shape %v, reference %v", name, g.Shape, r.Shape)
			continue
		}
		for i := range gv {
			maxErr = math.Max(maxErr, math.Abs(float64(gv[i])-float64(rv[i])))
		}
		elems += len(gv)
	}
	t.Logf("%d tensors, %d values, max |Go − gguf-py| = %g", len(ref), elems, maxErr)
	if maxErr != 0 {
		t.Errorf("max abs difference %g, want 0", maxErr)
	}

	var meta map[string]any
	raw, _ := os.ReadFile(filepath.Join(refDir, "meta.json"))
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	cfg := readJSON(t, filepath.Join(out, "config.json"))
	checks := map[string]any{
		"hidden_size":             meta["llama.embedding_length"],
		"num_hidden_layers":       meta["llama.block_count"],
		"num_attention_heads":     meta["llama.attention.head_count"],
		"num_key_value_heads":     meta["llama.attention.head_count_kv"],
		"intermediate_size":       meta["llama.feed_forward_length"],
		"max_position_embeddings": meta["llama.context_length"],
		"rope_theta":              meta["llama.rope.freq_base"],
		"vocab_size":              meta["tokenizer.ggml.tokens.count"],
		"rms_norm_eps":            1e-5,
		"tie_word_embeddings":     true,
		"model_type":              "llama",
		"bos_token_id":            meta["tokenizer.ggml.bos_token_id"],
		"eos_token_id":            meta["tokenizer.ggml.eos_token_id"],
	}
	for k, v := range checks {
		if cfg[k] != v {
			t.Errorf("config %s = %v, want %v", k, cfg[k], v)
		}
	}
	tj := readJSON(t, filepath.Join(out, "tokenizer.json"))
	model := tj["model"].(map[string]any)
	if n := len(model["vocab"].(map[string]any)); float64(n) != meta["tokenizer.ggml.tokens.count"] {
		t.Errorf("vocab of %d tokens, GGUF has %v", n, meta["tokenizer.ggml.tokens.count"])
	}
	if n := len(model["merges"].([]any)); float64(n) != meta["tokenizer.ggml.merges.count"] {
		t.Errorf("%d merges, GGUF has %v", n, meta["tokenizer.ggml.merges.count"])
	}
	if n := len(tj["added_tokens"].([]any)); n == 0 {
		t.Error("no added (control) tokens")
	}
	tc := readJSON(t, filepath.Join(out, "tokenizer_config.json"))
	if tc["chat_template"] != meta["tokenizer.chat_template"] || tc["eos_token"] != "<|im_end|>" || tc["bos_token"] != "<|im_start|>" {
		t.Errorf("tokenizer_config: eos %v bos %v, chat template carried over: %v", tc["eos_token"], tc["bos_token"], tc["chat_template"] == meta["tokenizer.chat_template"])
	}
}
