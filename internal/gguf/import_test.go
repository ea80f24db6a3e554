package gguf

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/safetensors"
	"github.com/ssp-project/ssp/internal/tokenizer"

	"github.com/ssp-project/ssp/internal/fixtures"
)

// quiet discards the progress log of imports run by tests.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// sharedFixtures locates the read-only reference checkpoints beside the checkout.
func sharedFixtures(t *testing.T) string {
	t.Helper()
	return fixtures.Shared(t, "hf")
}

// testVocab is a small byte-level BPE vocabulary with three merges and
// three control tokens.
func testVocab(pre string) []kv {
	tokens := append(tokenizer.ByteAlphabet(), "Ġt", "he", "Ġthe", "<|endoftext|>", "<|im_start|>", "<|im_end|>")
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = tokenNormal
	}
	for i := len(tokens) - 3; i < len(tokens); i++ {
		types[i] = tokenControl
	}
	return []kv{
		{"tokenizer.ggml.model", "gpt2"},
		{"tokenizer.ggml.pre", pre},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.merges", []string{"Ġ t", "h e", "Ġt he"}},
		{"tokenizer.ggml.bos_token_id", uint32(len(tokens) - 2)},
		{"tokenizer.ggml.eos_token_id", uint32(len(tokens) - 1)},
		{"tokenizer.ggml.padding_token_id", uint32(len(tokens) - 3)},
		{"tokenizer.ggml.add_bos_token", false},
		{"tokenizer.chat_template", "{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}"},
	}
}

type fixtureConfig struct {
	Layers, Hidden, Inter, Heads, KVHeads, HeadDim, Vocab, MaxPos int
	Eps                                                           float64
	Tied                                                          bool
	Theta                                                         float64
	Rope                                                          map[string]any
}

func readFixtureConfig(t *testing.T, dir string) fixtureConfig {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Layers  int            `json:"num_hidden_layers"`
		Hidden  int            `json:"hidden_size"`
		Inter   int            `json:"intermediate_size"`
		Heads   int            `json:"num_attention_heads"`
		KVHeads int            `json:"num_key_value_heads"`
		HeadDim int            `json:"head_dim"`
		Vocab   int            `json:"vocab_size"`
		MaxPos  int            `json:"max_position_embeddings"`
		Eps     float64        `json:"rms_norm_eps"`
		Tied    bool           `json:"tie_word_embeddings"`
		Rope    map[string]any `json:"rope_parameters"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	fc := fixtureConfig{c.Layers, c.Hidden, c.Inter, c.Heads, c.KVHeads, c.HeadDim, c.Vocab, c.MaxPos, c.Eps, c.Tied, c.Rope["rope_theta"].(float64), c.Rope}
	if fc.HeadDim == 0 {
		fc.HeadDim = fc.Hidden / fc.Heads
	}
	return fc
}

// permuteRows applies llama.cpp's convert_hf_to_gguf permute(): rows of a
// head are viewed as (2, headDim/2) and transposed.
func permuteRows(v []float32, heads, rowLen int) []float32 {
	rows := len(v) / rowLen
	hd := rows / heads
	out := make([]float32, len(v))
	for h := 0; h < heads; h++ {
		for p := 0; p < 2; p++ {
			for i := 0; i < hd/2; i++ {
				src := (h*hd + p*hd/2 + i) * rowLen
				dst := (h*hd + i*2 + p) * rowLen
				copy(out[dst:dst+rowLen], v[src:src+rowLen])
			}
		}
	}
	return out
}

// llama3RopeFreqs computes the rope_freqs tensor as llama.cpp's converter does.
func llama3RopeFreqs(c fixtureConfig) []float32 {
	factor := c.Rope["factor"].(float64)
	low, high := c.Rope["low_freq_factor"].(float64), c.Rope["high_freq_factor"].(float64)
	old := c.Rope["original_max_position_embeddings"].(float64)
	var out []float32
	for i := 0; i < c.HeadDim; i += 2 {
		freq := 1 / math.Pow(c.Theta, float64(i)/float64(c.HeadDim))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < old/high:
			out = append(out, 1)
		case wavelen > old/low:
			out = append(out, float32(factor))
		default:
			s := (old/wavelen - low) / (high - low)
			out = append(out, float32(1/((1-s)/factor+s)))
		}
	}
	return out
}

var hfToGGUF = map[string]string{
	"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
	"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
	"self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
	"mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}

func ggufName(t *testing.T, hf string) string {
	switch hf {
	case "model.embed_tokens.weight":
		return "token_embd.weight"
	case "model.norm.weight":
		return "output_norm.weight"
	case "lm_head.weight":
		return "output.weight"
	}
	parts := strings.SplitN(strings.TrimPrefix(hf, "model.layers."), ".", 2)
	mod := parts[1][:strings.LastIndex(parts[1], ".")]
	suffix := parts[1][strings.LastIndex(parts[1], ".")+1:]
	g, ok := hfToGGUF[mod]
	if !ok {
		t.Fatalf("no GGUF name for %s", hf)
	}
	return "blk." + parts[0] + "." + g + "." + suffix
}

// fixtureGGUF converts a shared Hugging Face fixture to GGUF the way
// llama.cpp's converter does (reversed dims, permuted llama q/k, rope_freqs
// for llama3 scaling) and writes it to a temporary file.
func fixtureGGUF(t *testing.T, name, arch, pre string) (string, map[string]*safetensors.Tensor, fixtureConfig) {
	dir := filepath.Join(sharedFixtures(t), name)
	c := readFixtureConfig(t, dir)
	weights, err := safetensors.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	kvs := []kv{
		{"general.architecture", arch},
		{"general.name", "fixture " + name},
		{arch + ".block_count", uint32(c.Layers)},
		{arch + ".context_length", uint32(c.MaxPos)},
		{arch + ".embedding_length", uint32(c.Hidden)},
		{arch + ".feed_forward_length", uint32(c.Inter)},
		{arch + ".attention.head_count", uint32(c.Heads)},
		{arch + ".attention.head_count_kv", uint32(c.KVHeads)},
		{arch + ".attention.key_length", uint32(c.HeadDim)},
		{arch + ".attention.value_length", uint32(c.HeadDim)},
		{arch + ".rope.dimension_count", uint32(c.HeadDim)},
		{arch + ".rope.freq_base", float32(c.Theta)},
		{arch + ".attention.layer_norm_rms_epsilon", float32(c.Eps)},
	}
	kvs = append(kvs, testVocab(pre)...)
	names := make([]string, 0, len(weights))
	for n := range weights {
		names = append(names, n)
	}
	sort.Strings(names)
	var tensors []tensorSpec
	for _, n := range names {
		w := weights[n]
		v, err := w.Float32()
		if err != nil {
			t.Fatal(err)
		}
		g := ggufName(t, n)
		rowLen := w.Shape[len(w.Shape)-1]
		if len(w.Shape) == 1 {
			rowLen = 1
		}
		if arch == "llama" && (strings.Contains(g, ".attn_q.") || strings.Contains(g, ".attn_k.")) {
			heads := c.Heads
			if strings.Contains(g, ".attn_k.") {
				heads = c.KVHeads
			}
			v = permuteRows(v, heads, rowLen)
		}
		dims := make([]uint64, len(w.Shape))
		for i, d := range w.Shape {
			dims[len(w.Shape)-1-i] = uint64(d)
		}
		tensors = append(tensors, tensorSpec{name: g, dims: dims, typ: TypeF32, data: f32Bytes(v)})
	}
	if c.Rope["rope_type"] == "llama3" {
		freqs := llama3RopeFreqs(c)
		tensors = append(tensors, tensorSpec{name: "rope_freqs.weight", dims: []uint64{uint64(len(freqs))}, typ: TypeF32, data: f32Bytes(freqs)})
	}
	path := filepath.Join(t.TempDir(), name+".gguf")
	if err := os.WriteFile(path, encodeGGUF(kvs, tensors), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, weights, c
}

func readJSON(t *testing.T, path string) map[string]any {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func TestImportFixtures(t *testing.T) {
	for _, tc := range []struct{ fixture, arch, pre, class string }{
		{"llama3", "llama", "llama-bpe", "LlamaForCausalLM"},
		{"qwen2", "qwen2", "qwen2", "Qwen2ForCausalLM"},
		{"qwen3", "qwen3", "qwen2", "Qwen3ForCausalLM"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			path, weights, c := fixtureGGUF(t, tc.fixture, tc.arch, tc.pre)
			out := filepath.Join(t.TempDir(), "hf")
			if err := Import(context.Background(), path, out, ImportOptions{Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			got, err := safetensors.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(weights) {
				t.Errorf("%d tensors, the fixture has %d", len(got), len(weights))
			}
			for name, w := range weights {
				g := got[name]
				if g == nil {
					t.Errorf("missing %s", name)
					continue
				}
				if g.DType != safetensors.F32 || !reflect.DeepEqual(g.Shape, w.Shape) || string(g.Data) != string(w.Data) {
					t.Errorf("%s: %s %v differs from the fixture's %s %v", name, g.DType, g.Shape, w.DType, w.Shape)
				}
			}
			cfg := readJSON(t, filepath.Join(out, "config.json"))
			want := map[string]any{
				"architectures": []any{tc.class}, "model_type": tc.arch, "hidden_size": float64(c.Hidden),
				"intermediate_size": float64(c.Inter), "num_hidden_layers": float64(c.Layers),
				"num_attention_heads": float64(c.Heads), "num_key_value_heads": float64(c.KVHeads),
				"head_dim": float64(c.HeadDim), "vocab_size": float64(c.Vocab), "rms_norm_eps": c.Eps,
				"rope_theta": c.Theta, "tie_word_embeddings": c.Tied, "max_position_embeddings": float64(c.MaxPos),
				"torch_dtype": "float32",
			}
			for k, v := range want {
				if !reflect.DeepEqual(cfg[k], v) {
					t.Errorf("config %s = %v, want %v", k, cfg[k], v)
				}
			}
			if c.Rope["rope_type"] == "llama3" {
				rs, _ := cfg["rope_scaling"].(map[string]any)
				for _, k := range []string{"rope_type", "factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"} {
					if !reflect.DeepEqual(rs[k], c.Rope[k]) {
						t.Errorf("rope_scaling.%s = %v, want %v", k, rs[k], c.Rope[k])
					}
				}
			} else if cfg["rope_scaling"] != nil {
				t.Errorf("rope_scaling = %v, want null", cfg["rope_scaling"])
			}

			// The tokenizer files load in the project's tokenizer and encode
			// with the merges and control tokens.
			tok, err := tokenizer.Load(out)
			if err != nil {
				t.Fatalf("loading the written tokenizer: %v", err)
			}
			ids := tok.Encode("<|im_start|>the the<|im_end|>")
			end, _ := tok.TokenID("<|im_end|>")
			start, _ := tok.TokenID("<|im_start|>")
			the, _ := tok.TokenID("Ġthe")
			he, _ := tok.TokenID("he")
			tID, _ := tok.TokenID("t")
			wantIDs := []int32{start, tID, he, the, end}
			if !reflect.DeepEqual(ids, wantIDs) {
				t.Errorf("Encode = %v, want %v", ids, wantIDs)
			}
			if got := tok.Decode(ids); got != "<|im_start|>the the<|im_end|>" {
				t.Errorf("Decode = %q", got)
			}
			if eos := tok.EOSTokenIDs(); len(eos) == 0 || eos[0] != end {
				t.Errorf("EOS ids %v, want [%d]", eos, end)
			}
			tc := readJSON(t, filepath.Join(out, "tokenizer_config.json"))
			if tc["chat_template"] == nil || tc["bos_token"] != "<|im_start|>" || tc["pad_token"] != "<|endoftext|>" {
				t.Errorf("tokenizer_config: %v", tc)
			}
		})
	}
}

func TestImportDTypesAndShards(t *testing.T) {
	path, weights, _ := fixtureGGUF(t, "qwen2", "qwen2", "qwen2")
	for _, dt := range []safetensors.DType{safetensors.BF16, safetensors.F16} {
		out := filepath.Join(t.TempDir(), "hf")
		if err := Import(context.Background(), path, out, ImportOptions{Logger: quiet, DType: dt, MaxShardBytes: 200_000}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(out, safetensors.IndexFile)); err != nil {
			t.Errorf("%s: no shard index for a 600 KB model with 200 KB shards: %v", dt, err)
		}
		got, err := safetensors.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range weights {
			want, _ := w.Float32()
			enc, _ := safetensors.FromFloat32(w.Shape, want, dt)
			if g := got[name]; g == nil || g.DType != dt || string(g.Data) != string(enc.Data) {
				t.Errorf("%s: not the %s rounding of the fixture", name, dt)
			}
		}
		cfg := readJSON(t, filepath.Join(out, "config.json"))
		if want := map[safetensors.DType]string{safetensors.BF16: "bfloat16", safetensors.F16: "float16"}[dt]; cfg["torch_dtype"] != want {
			t.Errorf("torch_dtype %v, want %s", cfg["torch_dtype"], want)
		}
	}
}

func TestImportErrors(t *testing.T) {
	path, _, _ := fixtureGGUF(t, "qwen3", "qwen3", "qwen2")
	raw, _ := os.ReadFile(path)
	ctx := context.Background()
	dir := t.TempDir()

	existing := filepath.Join(dir, "exists")
	os.Mkdir(existing, 0o755)
	os.WriteFile(filepath.Join(existing, "notes.txt"), []byte("mine"), 0o644)
	if err := Import(ctx, path, existing, ImportOptions{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("existing output: %v", err)
	}
	if _, err := os.Stat(filepath.Join(existing, "notes.txt")); err != nil {
		t.Errorf("refused import touched the directory: %v", err)
	}
	if err := Import(ctx, dir, filepath.Join(dir, "y"), ImportOptions{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "is a directory, not a GGUF file") {
		t.Errorf("a directory as --gguf: %v", err)
	}
	// An imported checkpoint is replaced by the next import.
	again := filepath.Join(dir, "again")
	for range 2 {
		if err := Import(ctx, path, again, ImportOptions{Logger: quiet}); err != nil {
			t.Fatalf("import over an earlier import: %v", err)
		}
	}
	if err := Import(ctx, path, filepath.Join(dir, "x"), ImportOptions{Logger: quiet, DType: safetensors.I32}); err == nil {
		t.Error("I32 output: want an error")
	}

	// Rewrite metadata values in place (same length) to reach other errors.
	patch := func(old, new string) string {
		if len(old) != len(new) {
			t.Fatalf("patch %q→%q changes the length", old, new)
		}
		i := strings.Index(string(raw), old)
		if i < 0 {
			t.Fatalf("%q not in the file", old)
		}
		b := []byte(string(raw))
		copy(b[i:], new)
		p := filepath.Join(t.TempDir(), "patched.gguf")
		os.WriteFile(p, b, 0o644)
		return p
	}
	cases := []struct {
		name, path, want string
	}{
		{"unsupported architecture", patch("\x05\x00\x00\x00\x00\x00\x00\x00qwen3", "\x05\x00\x00\x00\x00\x00\x00\x00gemma"), `architecture "gemma"`},
		{"unknown tensor", patch("blk.1.ffn_up.weight", "blk.1.ffn_xx.weight"), `"blk.1.ffn_xx.weight" has no Hugging Face counterpart`},
		{"missing tensor", patch("blk.1.ffn_up.weight", "blk.7.ffn_up.weight"), "not part of a qwen3 model"},
		{"unsupported tokenizer", patch("\x04\x00\x00\x00\x00\x00\x00\x00gpt2", "\x04\x00\x00\x00\x00\x00\x00\x00t5xx"), `tokenizer.ggml.model "t5xx"`},
		{"unsupported pre-tokenizer", patch("\x05\x00\x00\x00\x00\x00\x00\x00qwen2", "\x05\x00\x00\x00\x00\x00\x00\x00zzzzz"), `tokenizer.ggml.pre "zzzzz"`},
	}
	for _, c := range cases {
		out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
		err := Import(ctx, c.path, out, ImportOptions{Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
		if _, statErr := os.Stat(out); statErr == nil {
			t.Errorf("%s: output directory created despite the error", c.name)
		}
	}
	// A file without the model's dimensions is refused, naming the key.
	q5 := encodeGGUF(append([]kv{{"general.architecture", "qwen3"}}, testVocab("qwen2")...), []tensorSpec{
		{name: "token_embd.weight", dims: []uint64{256, 300}, typ: TypeQ5_K, data: make([]byte, 300*176)},
	})
	p := filepath.Join(dir, "q5.gguf")
	os.WriteFile(p, q5, 0o644)
	if err := Import(ctx, p, filepath.Join(dir, "q5"), ImportOptions{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "block_count") {
		t.Errorf("missing hyper-parameters: %v", err)
	}
	if err := Import(ctx, path, filepath.Join(dir, "complete"), ImportOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	// Parent directories of --out are created, as in `--out models/smollm2`.
	if err := Import(ctx, path, filepath.Join(dir, "models", "nested", "m"), ImportOptions{Logger: quiet}); err != nil {
		t.Fatalf("output under missing parents: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "models", "nested", "m", "config.json")); err != nil {
		t.Errorf("output under missing parents: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Import(cctx, path, filepath.Join(dir, "cancelled2"), ImportOptions{Logger: quiet}); err == nil {
		t.Error("cancelled import: want an error")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
}

func TestUnsupportedTensorType(t *testing.T) {
	kvs := []kv{{"general.architecture", "qwen3"}, {"qwen3.block_count", uint32(1)}, {"qwen3.embedding_length", uint32(256)},
		{"qwen3.feed_forward_length", uint32(256)}, {"qwen3.attention.head_count", uint32(2)}}
	kvs = append(kvs, testVocab("qwen2")...)
	data := encodeGGUF(kvs, []tensorSpec{
		{name: "token_embd.weight", dims: []uint64{256, 300}, typ: TypeQ5_K, data: make([]byte, 300*176)},
	})
	p := filepath.Join(t.TempDir(), "q5.gguf")
	os.WriteFile(p, data, 0o644)
	err := Import(context.Background(), p, filepath.Join(t.TempDir(), "out"), ImportOptions{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), `"token_embd.weight"`) || !strings.Contains(err.Error(), "Q5_K") {
		t.Errorf("got %v, want an error naming token_embd.weight and Q5_K", err)
	}
}

func TestUnpermuteInvertsPermute(t *testing.T) {
	v := make([]float32, 4*8*3)
	for i := range v {
		v[i] = float32(i)
	}
	back, err := unpermuteRows(permuteRows(v, 4, 3), 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Error("unpermuteRows(permuteRows(x)) != x")
	}
	if _, err := unpermuteRows(v, 5, 3); err == nil {
		t.Error("rows not divisible into heads: want an error")
	}
}

func TestLlama3RopeScaling(t *testing.T) {
	// Llama 3.1 8B: head size 128, θ 500000, factor 8, old context 8192.
	c := fixtureConfig{HeadDim: 128, Theta: 500000, Rope: map[string]any{
		"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192.0}}
	rs, err := llama3RopeScaling(llama3RopeFreqs(c), c.Theta, c.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	if rs["factor"] != 8.0 || rs["high_freq_factor"] != 4.0 || rs["original_max_position_embeddings"] != 8192 {
		t.Errorf("recovered %v", rs)
	}
	c.Rope["factor"], c.Rope["high_freq_factor"], c.Rope["original_max_position_embeddings"] = 32.0, 2.0, 4096.0
	rs, err = llama3RopeScaling(llama3RopeFreqs(c), c.Theta, c.HeadDim)
	if err != nil || rs["factor"] != 32.0 || rs["high_freq_factor"] != 2.0 || rs["original_max_position_embeddings"] != 4096 {
		t.Errorf("recovered %v, %v", rs, err)
	}
	bad := llama3RopeFreqs(c)
	bad[0] = 3
	if _, err := llama3RopeScaling(bad, c.Theta, c.HeadDim); err == nil {
		t.Error("factors that follow no llama3 schedule: want an error")
	}
}
