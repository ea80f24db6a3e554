package model

import (
	"context"
	"encoding/json"
	"github.com/ssp-project/ssp/internal/safetensors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestConfigLayouts(t *testing.T) {
	classic, err := LoadConfig("testdata/llama3_classic_config.json")
	if err != nil {
		t.Fatal(err)
	}
	want := RopeConfig{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4,
		OriginalMaxPositionEmbeddings: 64}
	if classic.Rope != want {
		t.Errorf("classic rope %+v, want %+v", classic.Rope, want)
	}
	if classic.HeadDim != 16 || classic.DType != "bfloat16" || !slices.Equal(classic.EOSTokenIDs, []int{2, 3}) ||
		classic.BOSTokenID != 1 || classic.PadTokenID != -1 || classic.RMSNormEps != 1e-5 {
		t.Errorf("classic config %+v", classic)
	}
	dir := fixturesDir(t)
	nested, err := LoadConfig(filepath.Join(dir, "llama3", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if nested.Rope != want {
		t.Errorf("transformers-5 rope %+v, want %+v", nested.Rope, want)
	}
	qwen3, err := LoadConfig(filepath.Join(dir, "qwen3", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if qwen3.HeadDim != 32 || qwen3.Rope.Theta != 1e6 || qwen3.Rope.Type != "default" || len(qwen3.EOSTokenIDs) != 0 {
		t.Errorf("qwen3 config %+v", qwen3)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ json, want string }{
		{`{"model_type": "gpt2", "hidden_size": 8}`, `model_type "gpt2" is not supported`},
		{`{"hidden_size": 8}`, "model_type is missing"},
		{`{"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
		   "num_attention_heads": 3, "num_key_value_heads": 2, "vocab_size": 8}`, "multiple of num_key_value_heads"},
		{`{"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
		   "num_attention_heads": 2, "vocab_size": 8, "rope_scaling": {"type": "yarn", "factor": 2}}`, `rope_type "yarn"`},
		{`{"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 8}`,
			"intermediate_size must be positive"},
		{`{"model_type": "llama", "eos_token_id": "x"}`, "eos_token_id"},
		{`[1, 2]`, "parse config.json"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.json, err, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(path, []byte(`{"model_type": "mamba"}`), 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "mamba") {
		t.Errorf("error %v should name the file and the model_type", err)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	for _, path := range []string{"testdata/llama3_classic_config.json"} {
		cfg, err := LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(data)
		if err != nil {
			t.Fatal(err)
		}
		if again.Rope != cfg.Rope || again.HeadDim != cfg.HeadDim || !slices.Equal(again.EOSTokenIDs, cfg.EOSTokenIDs) ||
			again.DType != cfg.DType {
			t.Errorf("round trip changed the config:\n%+v\n%+v", cfg, again)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	seed, _ := os.ReadFile("testdata/llama3_classic_config.json")
	f.Add(seed)
	f.Add([]byte(`{"model_type": "qwen3", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 1024,
		"rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}}`))
	f.Add([]byte(`{"model_type": "qwen2", "hidden_size": -1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		if cfg.HeadDim <= 0 || cfg.NumAttentionHeads%cfg.NumKeyValueHeads != 0 || cfg.HeadDim%2 != 0 {
			t.Errorf("invalid config accepted: %+v", cfg)
		}
		if _, err := json.Marshal(cfg); err != nil {
			t.Errorf("accepted config does not marshal: %v", err)
		}
	})
}

func TestSaveLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, family := range []string{"llama", "qwen2", "qwen3"} {
		m := tinyModel(t, family, 11)
		dir := filepath.Join(t.TempDir(), "ckpt")
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		if err := m.Save(dir); err != nil { // replacing an existing checkpoint
			t.Fatal(err)
		}
		back, err := Load(dir, LoadOptions{Backend: "go"})
		if err != nil {
			t.Fatal(err)
		}
		ids := [][]int32{{1, 2, 3, 4}}
		a, _ := m.Logits(ctx, ids, nil)
		b, err := back.Logits(ctx, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(t, a.Data, b.Data); d != 0 {
			t.Errorf("%s: logits differ by %g after save/load", family, d)
		}
		entries, _ := os.ReadDir(filepath.Dir(dir))
		if len(entries) != 1 {
			t.Errorf("temporary files left beside the checkpoint: %v", entries)
		}
		st, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st[wLMHead]; ok {
			t.Errorf("tied lm_head written")
		}
	}
}

func TestLoadErrors(t *testing.T) {
	m := tinyModel(t, "llama", 1)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.json")
	data, _ := os.ReadFile(cfgPath)
	var raw map[string]any
	json.Unmarshal(data, &raw)

	raw["intermediate_size"] = 48
	changed, _ := json.Marshal(raw)
	os.WriteFile(cfgPath, changed, 0o644)
	_, err := Load(dir, LoadOptions{Backend: "go"})
	if err == nil || !strings.Contains(err.Error(), "model.layers.0.mlp.gate_proj.weight") ||
		!strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("shape mismatch error %v should name the tensor and the file", err)
	}

	raw["intermediate_size"] = 64
	raw["num_hidden_layers"] = 3
	changed, _ = json.Marshal(raw)
	os.WriteFile(cfgPath, changed, 0o644)
	_, err = Load(dir, LoadOptions{Backend: "go"})
	if err == nil || !strings.Contains(err.Error(), "model.layers.2.") {
		t.Errorf("missing tensor error %v should name the tensor", err)
	}

	if _, err := Load(t.TempDir(), LoadOptions{Backend: "go"}); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty dir error %v", err)
	}
	if _, err := Load(dir, LoadOptions{Backend: "nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("bad backend error %v", err)
	}
}

func TestShardedAndBFloat16Checkpoints(t *testing.T) {
	ctx := context.Background()
	m := tinyModel(t, "qwen3", 12)
	m.Config.DType = "bfloat16"
	dir := filepath.Join(t.TempDir(), "bf16")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if st[wEmbed].DType != "BF16" {
		t.Fatalf("bfloat16 checkpoint stored %s", st[wEmbed].DType)
	}
	// Split the weights into two shards with an index, as large checkpoints are.
	index := map[string]map[string]string{"weight_map": {}}
	shards := []map[string]*safetensors.Tensor{{}, {}}
	i := 0
	for name, ten := range st {
		file := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i%2]
		shards[i%2][name] = ten
		index["weight_map"][name] = file
		i++
	}
	for j, shard := range shards {
		name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[j]
		if err := safetensors.WriteFile(filepath.Join(dir, name), shard, nil); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(dir, "model.safetensors"))
	data, _ := json.Marshal(index)
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), data, 0o644)

	back, err := Load(dir, LoadOptions{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	ids := [][]int32{{5, 4, 3, 2, 1}}
	a, _ := m.Logits(ctx, ids, nil)
	b, err := back.Logits(ctx, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, a.Data, b.Data); d == 0 || d > 0.05 {
		t.Errorf("bfloat16 round trip changed logits by %g", d)
	}
}

func TestClose(t *testing.T) {
	m := tinyModel(t, "llama", 1)
	if _, err := m.Logits(context.Background(), [][]int32{{1, 2}}, nil); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := m.Logits(context.Background(), [][]int32{{1, 2}}, nil); err == nil {
		t.Error("a closed model still computes")
	}
}
