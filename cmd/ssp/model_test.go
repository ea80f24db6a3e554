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
	"github.com/ssp-project/ssp/internal/tokenizer"
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

// TestModelGeneratePrompt checks the text path of `model generate`: the
// prompt in the chat template, the answer streamed as text without EOS or
// padding, equal to the token path's output decoded; --raw skips the
// template.
func TestModelGeneratePrompt(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	ctx := context.Background()
	ckpt := filepath.Join("..", "..", "internal", "builtin", "model")
	tok, err := tokenizer.Load(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	question := "Who founded Osk?"
	for _, raw := range []bool{false, true} {
		args := []string{"model", "generate", "--model", ckpt, "--prompt", question, "--max-new-tokens", "40"}
		text := question
		if raw {
			args = append(args, "--raw")
		} else {
			text, _ = tok.ApplyChatTemplate([]tokenizer.Message{{Role: "user", Content: question}}, true)
		}
		streamed, code := captureStdout(t, func() int { return dispatch(ctx, args) })
		if code != 0 {
			t.Fatalf("--prompt (raw %v) exited %d", raw, code)
		}
		// The same generation through token ids.
		ids := tok.Encode(text)
		in, _ := json.Marshal(map[string]any{"input_ids": [][]int32{ids}})
		input := filepath.Join(t.TempDir(), "in.json")
		os.WriteFile(input, in, 0o644)
		out, code := captureStdout(t, func() int {
			return dispatch(ctx, []string{"model", "generate", "--model", ckpt, "--input", input, "--max-new-tokens", "40"})
		})
		if code != 0 {
			t.Fatalf("--input exited %d", code)
		}
		var gen struct{ Sequences [][]int32 }
		if err := json.Unmarshal([]byte(out), &gen); err != nil {
			t.Fatal(err)
		}
		want := tok.DecodeSkipSpecial(gen.Sequences[0][len(ids):]) + "\n"
		if streamed != want {
			t.Errorf("raw %v: streamed %q, want %q", raw, streamed, want)
		}
		if strings.Contains(streamed, "<|") {
			t.Errorf("raw %v: special tokens in the text: %q", raw, streamed)
		}
		if !raw && strings.TrimSpace(streamed) == "" {
			t.Error("the chat-templated prompt produced no text")
		}
	}
	for _, args := range [][]string{
		{"model", "generate", "--model", ckpt},
		{"model", "generate", "--model", ckpt, "--prompt", "x", "--input", "f.json"},
		{"model", "generate", "--model", ckpt, "--raw", "--input", "f.json", "--max-new-tokens", "2"},
		{"model", "generate", "--model", ckpt, "--prompt", "x", "--raw", "--system", "s"},
		{"model", "generate", "--model", ckpt, "hello"},
	} {
		if code := dispatch(ctx, args); code != 2 {
			t.Errorf("%q exited %d, want 2", args, code)
		}
	}
}

// TestTextStreamHoldsPartialCharacters feeds a character split over two
// tokens: nothing is printed until it is whole.
func TestTextStreamHoldsPartialCharacters(t *testing.T) {
	pieces := map[int32]string{1: "caf", 2: "\xc3", 3: "\xa9!", 4: ""}
	decode := func(ids []int32) string {
		var b []byte
		for _, id := range ids {
			b = append(b, pieces[id]...)
		}
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	var buf bytes.Buffer
	s := newTextStream(&buf, decode)
	var seen []string
	for _, id := range []int32{1, 2, 3, 4} {
		s.add(id)
		seen = append(seen, buf.String())
	}
	if err := s.end(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"caf", "caf", "café!", "café!"}; strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("after each token: %q, want %q", seen, want)
	}
	if buf.String() != "café!\n" {
		t.Errorf("stream %q", buf.String())
	}
}
