package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ssp-project/ssp/internal/model"
)

func init() {
	register(command{name: "model bench", summary: "measure generation or training throughput on random-init weights",
		run: runModelBench})
}

// benchShapes are the architectures the model benchmark knows by name, as
// Hugging Face config.json maps. The two real shapes are those of
// HuggingFaceTB/SmolLM2-135M and Qwen/Qwen2.5-0.5B; scripts/bench_model_peer.py
// builds its PyTorch models from the same maps (ssp model bench --print-config).
var benchShapes = map[string]map[string]any{
	"smollm2-135m": {
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
		"num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
		"max_position_embeddings": 8192, "rope_theta": 100000, "rms_norm_eps": 1e-5,
		"initializer_range": 0.041666666666666664, "hidden_act": "silu", "attention_bias": false,
		"tie_word_embeddings": true, "bos_token_id": 0, "eos_token_id": 0,
	},
	"qwen2.5-0.5b": {
		"architectures": []string{"Qwen2ForCausalLM"}, "model_type": "qwen2",
		"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
		"num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
		"max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
		"initializer_range": 0.02, "hidden_act": "silu", "use_sliding_window": false,
		"tie_word_embeddings": true, "bos_token_id": 151643, "eos_token_id": 151643,
	},
	// tiny is a small Llama for checking the command on a CPU.
	"tiny": {
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
		"max_position_embeddings": 2048, "rope_theta": 10000, "rms_norm_eps": 1e-5,
		"initializer_range": 0.02, "hidden_act": "silu", "tie_word_embeddings": true,
		"bos_token_id": 0, "eos_token_id": 0,
	},
}

func benchShapeNames() string {
	names := make([]string, 0, len(benchShapes))
	for n := range benchShapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// benchResult is one measurement. scripts/bench_model_peer.py prints the
// same fields for PyTorch, so the two can be tabulated side by side.
type benchResult struct {
	Impl                    string `json:"impl"`
	Shape                   string `json:"shape"`
	ModelType               string `json:"model_type"`
	Mode                    string `json:"mode"`
	Backend                 string `json:"backend"`
	DType                   string `json:"dtype"` // weights for generation, compute for training (master weights float32)
	Params                  int    `json:"params"`
	Batch                   int    `json:"batch"`
	PromptLen               int    `json:"prompt_len,omitempty"`
	NewTokens               int    `json:"new_tokens,omitempty"`
	SeqLen                  int    `json:"seq_len,omitempty"`
	MicroBatch              int    `json:"micro_batch,omitempty"`
	ActivationCheckpointing bool   `json:"activation_checkpointing,omitempty"`
	Warmup                  int    `json:"warmup"`
	Iters                   int    `json:"iters"`

	WarmupSeconds  float64 `json:"warmup_s"` // includes compilation
	SecondsPerIter float64 `json:"s_per_iter"`
	TokensPerSec   float64 `json:"tokens_per_s"`

	// FLOPs per token: generation 2·N + 4·L·H·ctx (ctx: mean attended
	// length), training 6·N (the convention of the reference MFU figures);
	// FLOPsPerTokenAttn adds the attention term of training, 12·L·H·T.
	FLOPsPerToken     float64 `json:"flops_per_token"`
	FLOPsPerTokenAttn float64 `json:"flops_per_token_with_attention"`
	PeakTFLOPs        float64 `json:"peak_tflops"`
	MFU               float64 `json:"mfu"`
	MFUWithAttention  float64 `json:"mfu_with_attention"`

	// Roofline: decode is bound by the bytes each step reads (weights and
	// KV cache) over the memory bandwidth, training by peak compute.
	BandwidthGBs         float64 `json:"bandwidth_gbs"`
	WeightBytes          float64 `json:"weight_bytes"`
	KVBytesPerStep       float64 `json:"kv_bytes_per_step,omitempty"`
	RooflineTokensPerSec float64 `json:"roofline_tokens_per_s"`
	RooflineBound        string  `json:"roofline_bound"`
	RooflineFraction     float64 `json:"roofline_fraction"`

	PeakHostRSSMiB   float64 `json:"peak_host_rss_mib,omitempty"`
	PeakDeviceMemMiB float64 `json:"peak_device_mib,omitempty"` // not exposed by GoMLX backends; PyTorch fills it
	Loss             float64 `json:"loss,omitempty"`
}

func runModelBench(ctx context.Context, args []string) error {
	fs := newFlags("model bench",
		"(--shape NAME | --config config.json) [--mode generate|train] [--batch N] [--prompt-len N --new-tokens N | --seq-len N] [--json]")
	shape := fs.String("shape", "", "built-in architecture: "+benchShapeNames())
	configPath := fs.String("config", "", "Hugging Face config.json of the architecture (instead of --shape)")
	printConfig := fs.Bool("print-config", false, "print the config.json of --shape and exit")
	mode := fs.String("mode", "generate", "generate (prefill + sampled decode) or train (LM step: forward, backward, AdamW)")
	batch := fs.Int("batch", 0, "sequences per iteration (default 64 for generate, 16 for train)")
	promptLen := fs.Int("prompt-len", 128, "generate: prompt tokens per sequence")
	newTokens := fs.Int("new-tokens", 256, "generate: sampled tokens per sequence (no EOS: every row makes all of them)")
	seqLen := fs.Int("seq-len", 1024, "train: tokens per sequence")
	dtype := fs.String("dtype", "bfloat16", "float32 or bfloat16: weights and compute for generate; compute for train "+
		"(master weights stay float32)")
	microBatch := fs.Int("micro-batch", 0, "train: micro-batch size (0: whole batch at once)")
	checkpointing := fs.Bool("activation-checkpointing", false, "train: recompute layer internals in the backward pass")
	warmup := fs.Int("warmup", 1, "untimed iterations first (the first one compiles)")
	iters := fs.Int("iters", 3, "timed iterations")
	backend := fs.String("backend", "", backendHelp)
	seed := fs.Int64("seed", 1, "seed of the weights, ids and sampling")
	peakTFLOPs := fs.Float64("peak-tflops", 989, "peak dense TFLOP/s of the device for MFU (H100 SXM bf16: 989)")
	bandwidthGBs := fs.Float64("bandwidth-gbs", 3350, "memory bandwidth in GB/s for the roofline (H100 SXM: 3350, H200: 4800)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	if (*shape == "") == (*configPath == "") {
		return fmt.Errorf("%w: give one of --shape (%s) or --config", errUsage, benchShapeNames())
	}
	var cfgJSON []byte
	name := *shape
	if *shape != "" {
		preset, ok := benchShapes[*shape]
		if !ok {
			return fmt.Errorf("%w: --shape %q is not one of %s", errUsage, *shape, benchShapeNames())
		}
		cfgJSON, _ = json.MarshalIndent(preset, "", "  ")
	} else {
		data, err := os.ReadFile(*configPath)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		cfgJSON, name = data, *configPath
	}
	if *printConfig {
		_, err := fmt.Println(string(cfgJSON))
		return err
	}
	if *batch == 0 {
		*batch = map[string]int{"generate": 64, "train": 16}[*mode]
	}
	switch {
	case *mode != "generate" && *mode != "train":
		return fmt.Errorf("%w: --mode %q is not generate or train", errUsage, *mode)
	case *dtype != "float32" && *dtype != "bfloat16":
		return fmt.Errorf("%w: --dtype %q is not float32 or bfloat16", errUsage, *dtype)
	case *batch <= 0:
		return fmt.Errorf("%w: --batch must be positive", errUsage)
	case *promptLen <= 0:
		return fmt.Errorf("%w: --prompt-len must be positive", errUsage)
	case *newTokens <= 0:
		return fmt.Errorf("%w: --new-tokens must be positive", errUsage)
	case *seqLen < 2:
		return fmt.Errorf("%w: --seq-len must be at least 2", errUsage)
	case *microBatch < 0:
		return fmt.Errorf("%w: --micro-batch must not be negative", errUsage)
	case *warmup < 0:
		return fmt.Errorf("%w: --warmup must not be negative", errUsage)
	case *iters <= 0:
		return fmt.Errorf("%w: --iters must be positive", errUsage)
	case *peakTFLOPs <= 0:
		return fmt.Errorf("%w: --peak-tflops must be positive", errUsage)
	case *bandwidthGBs <= 0:
		return fmt.Errorf("%w: --bandwidth-gbs must be positive", errUsage)
	}

	cfg, err := model.ParseConfig(cfgJSON)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	opts := model.LoadOptions{Backend: *backend, DType: *dtype, ComputeDType: *dtype, MaxBatch: *batch}
	if *mode == "train" {
		opts.DType = "float32" // master weights; the trainer refuses bfloat16 storage
	}
	m, err := model.Init(cfg, *seed, opts)
	if err != nil {
		return err
	}
	defer m.Close()

	res := benchResult{
		Impl: "ssp", Shape: name, ModelType: cfg.ModelType, Mode: *mode, Backend: m.BackendName(), DType: *dtype,
		Params: m.NumParameters(), Batch: *batch, Warmup: *warmup, Iters: *iters,
		PeakTFLOPs: *peakTFLOPs, BandwidthGBs: *bandwidthGBs,
	}
	rng := rand.New(rand.NewPCG(uint64(*seed), 0xbe4c))
	randomIDs := func(n int) []int32 {
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(rng.IntN(cfg.VocabSize))
		}
		return ids
	}

	var iterate func() error
	if *mode == "generate" {
		res.PromptLen, res.NewTokens = *promptLen, *newTokens
		req := model.GenerateRequest{MaxNewTokens: *newTokens, Temperature: 1, TopP: 1, Seed: *seed}
		for range *batch {
			req.Prompts = append(req.Prompts, randomIDs(*promptLen))
		}
		iterate = func() error {
			gens, err := m.Generate(ctx, req)
			if err != nil {
				return err
			}
			for i, g := range gens {
				if len(g.Tokens) != *newTokens {
					return fmt.Errorf("generate: row %d made %d tokens, want %d", i, len(g.Tokens), *newTokens)
				}
			}
			return nil
		}
	} else {
		res.SeqLen, res.MicroBatch, res.ActivationCheckpointing = *seqLen, *microBatch, *checkpointing
		tr, err := model.NewTrainer(m, model.OptimizerConfig{LR: 1e-5, MaxGradNorm: 1, MicroBatchSize: *microBatch,
			ActivationCheckpointing: *checkpointing})
		if err != nil {
			return err
		}
		seqs := make([][]int32, *batch)
		for i := range seqs {
			seqs[i] = randomIDs(*seqLen)
		}
		iterate = func() error {
			stats, err := tr.LMStep(ctx, seqs, nil)
			res.Loss = stats.Loss
			return err
		}
	}

	start := time.Now()
	for i := range *warmup {
		if err := iterate(); err != nil {
			return fmt.Errorf("warm-up iteration %d: %w", i+1, err)
		}
	}
	res.WarmupSeconds = time.Since(start).Seconds()
	start = time.Now()
	for i := range *iters {
		if err := iterate(); err != nil {
			return fmt.Errorf("iteration %d: %w", i+1, err)
		}
	}
	res.SecondsPerIter = time.Since(start).Seconds() / float64(*iters)
	res.PeakHostRSSMiB = peakRSSMiB()
	res.roofline(cfg)

	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		return enc.Encode(res)
	}
	res.print()
	return nil
}

// roofline fills throughput, FLOPs, MFU and the roofline ceiling from the
// timing and the shapes.
func (r *benchResult) roofline(cfg model.Config) {
	n := float64(r.Params)
	layers := float64(cfg.NumHiddenLayers)
	attnWidth := float64(cfg.NumAttentionHeads * cfg.HeadDim)
	kvWidth := float64(cfg.NumKeyValueHeads * cfg.HeadDim)
	bytesPer := 4.0
	if r.DType == "bfloat16" {
		bytesPer = 2
	}
	peak := r.PeakTFLOPs * 1e12
	bandwidth := r.BandwidthGBs * 1e9
	if r.Mode == "generate" {
		r.TokensPerSec = float64(r.Batch*r.NewTokens) / r.SecondsPerIter
		// A decode step attends to the prompt and the tokens made so far.
		ctx := float64(r.PromptLen) + float64(r.NewTokens)/2
		r.FLOPsPerToken = 2*n + 4*layers*attnWidth*ctx
		r.FLOPsPerTokenAttn = r.FLOPsPerToken
		r.WeightBytes = n * bytesPer
		r.KVBytesPerStep = float64(r.Batch) * 2 * layers * kvWidth * ctx * bytesPer
		memoryBound := float64(r.Batch) * bandwidth / (r.WeightBytes + r.KVBytesPerStep)
		computeBound := peak / r.FLOPsPerToken
		r.RooflineTokensPerSec, r.RooflineBound = memoryBound, "memory"
		if computeBound < memoryBound {
			r.RooflineTokensPerSec, r.RooflineBound = computeBound, "compute"
		}
	} else {
		r.TokensPerSec = float64(r.Batch*r.SeqLen) / r.SecondsPerIter
		r.FLOPsPerToken = 6 * n
		r.FLOPsPerTokenAttn = 6*n + 12*layers*attnWidth*float64(r.SeqLen)
		r.WeightBytes = n * 4
		r.RooflineTokensPerSec, r.RooflineBound = peak/r.FLOPsPerTokenAttn, "compute"
	}
	r.MFU = r.FLOPsPerToken * r.TokensPerSec / peak
	r.MFUWithAttention = r.FLOPsPerTokenAttn * r.TokensPerSec / peak
	r.RooflineFraction = r.TokensPerSec / r.RooflineTokensPerSec
}

func (r *benchResult) print() {
	fmt.Printf("%s %s (%s, %.1fM parameters) on %s, %s\n", r.Mode, r.Shape, r.ModelType, float64(r.Params)/1e6, r.Backend, r.DType)
	if r.Mode == "generate" {
		fmt.Printf("  batch %d, prompt %d, %d sampled tokens: %.3f s per pass (warm-up %.1f s)\n",
			r.Batch, r.PromptLen, r.NewTokens, r.SecondsPerIter, r.WarmupSeconds)
	} else {
		fmt.Printf("  batch %d x %d tokens (micro-batch %d, checkpointing %v): %.3f s per step (warm-up %.1f s), loss %.3f\n",
			r.Batch, r.SeqLen, r.MicroBatch, r.ActivationCheckpointing, r.SecondsPerIter, r.WarmupSeconds, r.Loss)
	}
	if r.TokensPerSec >= 100 {
		fmt.Printf("  %.0f tokens/s\n", r.TokensPerSec)
	} else {
		fmt.Printf("  %.3g tokens/s\n", r.TokensPerSec)
	}
	fmt.Printf("  MFU %.3g at %.0f TFLOP/s peak (%.3g FLOPs/token); with attention %.3g\n",
		r.MFU, r.PeakTFLOPs, r.FLOPsPerToken, r.MFUWithAttention)
	fmt.Printf("  roofline: %.0f tokens/s, %s-bound (%.0f GB/s, %.0f TFLOP/s); measured is %.1f%% of it\n",
		r.RooflineTokensPerSec, r.RooflineBound, r.BandwidthGBs, r.PeakTFLOPs, 100*r.RooflineFraction)
	if r.PeakHostRSSMiB > 0 {
		fmt.Printf("  peak host memory %.0f MiB\n", r.PeakHostRSSMiB)
	}
}

// peakRSSMiB is the process's peak resident set (VmHWM), 0 where
// /proc is not available. GoMLX backends do not report device memory.
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}
