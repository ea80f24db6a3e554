// Package builtin prepares what `ssp train` and `ssp eval` use when they are
// given no model, corpus or data: a small policy model with a byte-level
// tokenizer, a corpus with self-play seeds and a held-out benchmark, and the
// BM25 index of that corpus. Everything is derived deterministically from
// code in this repository and cached on disk, so the first run on a fresh
// machine needs no download.
package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ssp-project/ssp/internal/corpus"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/selfplay"
)

// Version names the cached layout; bump it when what Prepare writes changes.
const Version = "v1"

// Paths locates the prepared default.
type Paths struct {
	Dir       string // root of the cache entry
	Model     string // HF-layout model directory with tokenizer files
	Corpus    string // corpus.jsonl (Search-R1 layout)
	Index     string // BM25 index of the corpus
	Seeds     string // seeds.jsonl for self-play
	Benchmark string // benchmark.jsonl (eval format), held out from training
}

func pathsIn(dir string) Paths {
	return Paths{
		Dir:       dir,
		Model:     filepath.Join(dir, "model"),
		Corpus:    filepath.Join(dir, "world", "corpus.jsonl"),
		Index:     filepath.Join(dir, "index"),
		Seeds:     filepath.Join(dir, "world", "seeds.jsonl"),
		Benchmark: filepath.Join(dir, "world", "benchmark.jsonl"),
	}
}

// DefaultCacheDir is $SSP_CACHE, else the user cache directory's ssp/.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("SSP_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set SSP_CACHE): %w", err)
	}
	return filepath.Join(d, "ssp"), nil
}

// Prepare returns the built-in default under cacheDir, building it first if
// it is missing. The entry is built in a temporary directory and renamed
// into place, so an interrupted Prepare leaves nothing half-written.
func Prepare(ctx context.Context, cacheDir string, logf func(format string, args ...any)) (Paths, error) {
	final := filepath.Join(cacheDir, "default-"+Version)
	if _, err := os.Stat(filepath.Join(final, "complete")); err == nil {
		return pathsIn(final), nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Paths{}, err
	}
	tmp, err := os.MkdirTemp(cacheDir, ".default-"+Version+"-*")
	if err != nil {
		return Paths{}, err
	}
	defer os.RemoveAll(tmp)
	p := pathsIn(tmp)

	logf("preparing the built-in default in %s (once)", final)
	if err := writeWorld(filepath.Dir(p.Corpus)); err != nil {
		return Paths{}, fmt.Errorf("built-in world: %w", err)
	}
	src, err := corpus.Open(p.Corpus, corpus.FormatJSONL)
	if err != nil {
		return Paths{}, err
	}
	if _, err := index.Build(ctx, src.Docs(ctx), p.Index, index.DefaultOptions()); err != nil {
		return Paths{}, fmt.Errorf("built-in index: %w", err)
	}
	if err := writeModel(p.Model); err != nil {
		return Paths{}, fmt.Errorf("built-in model: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), []byte(Version+"\n"), 0o644); err != nil {
		return Paths{}, err
	}
	os.RemoveAll(final) // an incomplete earlier entry
	if err := os.Rename(tmp, final); err != nil {
		return Paths{}, err
	}
	return pathsIn(final), nil
}

// modelConfig is a small Llama-family decoder: about 0.2M parameters, enough
// to run every phase of self-play on two CPU cores in minutes.
var modelConfig = map[string]any{
	"architectures":           []string{"LlamaForCausalLM"},
	"model_type":              "llama",
	"hidden_size":             64,
	"intermediate_size":       192,
	"num_hidden_layers":       2,
	"num_attention_heads":     4,
	"num_key_value_heads":     2,
	"rms_norm_eps":            1e-5,
	"max_position_embeddings": 4096,
	"rope_theta":              10000.0,
	"tie_word_embeddings":     true,
	"initializer_range":       0.02,
	"hidden_act":              "silu",
	"torch_dtype":             "float32",
}

// modelSeed fixes the random initialisation of the built-in model.
const modelSeed = 20251021

func writeModel(dir string) error {
	tok := byteTokenizer()
	cfgJSON := map[string]any{}
	for k, v := range modelConfig {
		cfgJSON[k] = v
	}
	cfgJSON["vocab_size"] = tok.vocabSize
	cfgJSON["eos_token_id"] = tok.eosID
	cfgJSON["pad_token_id"] = tok.padID
	data, err := json.Marshal(cfgJSON)
	if err != nil {
		return err
	}
	cfg, err := model.ParseConfig(data)
	if err != nil {
		return err
	}
	m, err := model.Init(cfg, modelSeed, model.LoadOptions{})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Save(dir); err != nil {
		return err
	}
	return tok.write(dir)
}

// TrainConfig scales the self-play defaults (SSP's, sized for GPUs) down to
// a short run of the built-in default on a 2-core CPU. Values the user set
// in a config file or flag are applied after this.
func TrainConfig(cfg *selfplay.Config) {
	cfg.Run.Steps = 3
	cfg.Run.SaveEvery = 3
	cfg.Run.Out = "runs/default"
	cfg.Game.BatchSize = 4
	cfg.Game.SolverRollouts = 3
	cfg.Agent.MaxTurns = 3
	cfg.Agent.MaxTokensPerTurn = 48
	cfg.Agent.MaxResponseTokens = 400
	cfg.Agent.MaxPromptTokens = 3000
	cfg.Agent.MaxInformationChars = 600
	cfg.Optim.LR = 1e-4
	cfg.Optim.WarmupSteps = 0
}
