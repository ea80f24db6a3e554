package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/fixtures"
)

// captureStdout runs fn and returns what it printed.
func captureStdout(t *testing.T, fn func() int) (string, int) { return capture(t, &os.Stdout, fn) }

// captureStderr runs fn and returns what it wrote to standard error.
func captureStderr(t *testing.T, fn func() int) (string, int) { return capture(t, &os.Stderr, fn) }

// capture runs fn with *stream redirected to a pipe and returns what was
// written to it.
func capture(t *testing.T, stream **os.File, fn func() int) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := *stream
	*stream = w
	code := fn()
	*stream = saved
	w.Close()
	var buf bytes.Buffer
	io.Copy(&buf, r)
	return buf.String(), code
}

func TestModelCommands(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 50,
		"max_position_embeddings": 64, "tie_word_embeddings": true, "eos_token_id": 49}`), 0o644)
	ckpt := filepath.Join(dir, "ckpt")
	ctx := context.Background()
	if code := dispatch(ctx, []string{"model", "init", "--config", cfg, "--out", ckpt, "--seed", "2"}); code != 0 {
		t.Fatalf("model init exited %d", code)
	}
	input := filepath.Join(dir, "in.json")
	os.WriteFile(input, []byte(`{"input_ids": [[0, 0, 5, 6], [1, 2, 3, 4]], "attention_mask": [[0, 0, 1, 1], [1, 1, 1, 1]],
		"pad_token_id": 0}`), 0o644)
	out, code := captureStdout(t, func() int {
		return dispatch(ctx, []string{"model", "generate", "--model", ckpt, "--input", input, "--max-new-tokens", "5", "--greedy"})
	})
	if code != 0 {
		t.Fatalf("model generate exited %d", code)
	}
	var gen struct{ Sequences [][]int32 }
	if err := json.Unmarshal([]byte(out), &gen); err != nil {
		t.Fatalf("generate output %q: %v", out, err)
	}
	if len(gen.Sequences) != 2 || len(gen.Sequences[0]) != len(gen.Sequences[1]) || len(gen.Sequences[0]) < 5 ||
		gen.Sequences[0][2] != 5 || gen.Sequences[1][0] != 1 {
		t.Errorf("sequences %v", gen.Sequences)
	}
	for _, cmd := range []string{"logits", "grads"} {
		input := input
		if cmd == "grads" {
			input = filepath.Join(dir, "grads.json")
			os.WriteFile(input, []byte(`{"input_ids": [[1, 2, 3, 4]]}`), 0o644)
		}
		path := filepath.Join(dir, cmd+".safetensors")
		if code := dispatch(ctx, []string{"model", cmd, "--model", ckpt, "--input", input, "--out", path}); code != 0 {
			t.Fatalf("model %s exited %d", cmd, code)
		}
		if st, err := os.Stat(path); err != nil || st.Size() < 1000 {
			t.Errorf("model %s output: %v", cmd, err)
		}
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"input_ids": [[1, 2], [3]]}`), 0o644)
	if code := dispatch(ctx, []string{"model", "logits", "--model", ckpt, "--input", bad, "--out", filepath.Join(dir, "x")}); code != 1 {
		t.Errorf("ragged input exited %d, want 1", code)
	}
	if code := dispatch(ctx, []string{"model", "generate", "--model", ckpt, "--input", input}); code != 2 {
		t.Errorf("missing --max-new-tokens exited %d, want 2", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("failed command left an output file")
	}
}

func TestLoadDecoderByteLevel(t *testing.T) {
	dir := t.TempDir()
	// "Ġ" is the byte-level stand-in for a space, "Ċ" for a newline.
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "BPE", "merges": [], "vocab": {"Hello": 0, "Ġworld": 1, "Ċ": 2, "Ã©": 3}},
		"added_tokens": [{"id": 4, "content": "</answer>", "special": true}], "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"decoder": {"type": "ByteLevel"}}`), 0o644)
	decode, err := loadDecoder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := decode([]int32{0, 1, 2, 3, 4}); got != "Hello world\né</answer>" {
		t.Errorf("decoded %q", got)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"vocab": {}}, "decoder": {"type": "Metaspace"}}`), 0o644)
	if _, err := loadDecoder(dir); err == nil {
		t.Error("unsupported decoder accepted")
	}
}

func TestLoadDecoderQwen3(t *testing.T) {
	dir := fixtures.Shared(t, "tokenizers", "qwen3")
	data, err := os.ReadFile(fixtures.Shared(t, "tokenizers", "qwen3", "cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	decode, err := loadDecoder(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c struct {
			IDs     []int32 `json:"ids"`
			Decoded string  `json:"decoded"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		if got := decode(c.IDs); got != c.Decoded {
			t.Errorf("decode(%v) = %q, want %q", c.IDs, got, c.Decoded)
		}
	}
}
