package model

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// benchConfig is a small Llama (hidden 128, 4 layers, vocab 2048) whose
// figures on the pure-Go CPU backend are reported in docs/benchmarks-model.md.
func benchModel(b *testing.B) *Model {
	b.Helper()
	cfg, err := ParseConfig([]byte(`{"model_type": "llama", "hidden_size": 128, "intermediate_size": 384,
		"num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048,
		"max_position_embeddings": 512, "tie_word_embeddings": true}`))
	if err != nil {
		b.Fatal(err)
	}
	m, err := Init(cfg, 1, LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchPrompts(batch, length int) [][]int32 {
	prompts := make([][]int32, batch)
	for i := range prompts {
		prompts[i] = make([]int32, length)
		for j := range prompts[i] {
			prompts[i][j] = int32((i*131 + j*17) % 2048)
		}
	}
	return prompts
}

// BenchmarkGenerate samples 64 new tokens for 8 prompts of 32 tokens.
func BenchmarkGenerate(b *testing.B) {
	m := benchModel(b)
	req := GenerateRequest{Prompts: benchPrompts(8, 32), MaxNewTokens: 64, Temperature: 1, TopP: 0.95, Seed: 1}
	ctx := context.Background()
	if _, err := m.Generate(ctx, req); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	tokens := 0
	for b.Loop() {
		gens, err := m.Generate(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		for _, g := range gens {
			tokens += len(g.Tokens)
		}
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}

// benchPolicyBatch is the PPO batch of the training benchmarks: 8
// sequences of 128 tokens, every token trained.
func benchPolicyBatch() PolicyBatch {
	seqs := benchPrompts(8, 128)
	batch := PolicyBatch{Sequences: seqs}
	for _, s := range seqs {
		ones, adv, old := make([]float32, len(s)), make([]float32, len(s)), make([]float32, len(s))
		for j := range s {
			ones[j], adv[j], old[j] = 1, 0.5, -7.6
		}
		batch.LossMask, batch.Advantages = append(batch.LossMask, ones), append(batch.Advantages, adv)
		batch.OldLogProbs, batch.RefLogProbs = append(batch.OldLogProbs, old), append(batch.RefLogProbs, old)
	}
	return batch
}

// BenchmarkTrainStep takes PPO steps on 8 sequences of 128 tokens.
func BenchmarkTrainStep(b *testing.B) {
	m := benchModel(b)
	tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-5, MaxGradNorm: 1})
	if err != nil {
		b.Fatal(err)
	}
	batch := benchPolicyBatch()
	ctx := context.Background()
	lossCfg := PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.28, KLCoef: 0.01}
	if _, err := tr.PolicyStep(ctx, batch, lossCfg); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	tokens := 0
	for b.Loop() {
		if _, err := tr.PolicyStep(ctx, batch, lossCfg); err != nil {
			b.Fatal(err)
		}
		tokens += 8 * 128
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkLoRA takes the PPO steps of BenchmarkTrainStep with every
// weight trained (full) and with rank-8 adapters on every projection
// (lora), reporting trained tokens/s and the peak Go heap of the whole
// model and trainer during the timed steps (docs/lora.md).
func BenchmarkLoRA(b *testing.B) {
	for _, kind := range []string{"full", "lora"} {
		b.Run(kind, func(b *testing.B) {
			defer debug.SetGCPercent(debug.SetGCPercent(10))
			runtime.GC()
			runtime.GC()
			base := heapBytes()
			m := benchModel(b)
			defer m.Close()
			if kind == "lora" {
				if err := m.AddLoRA(LoRAConfig{Rank: 8, Alpha: 16, Targets: LoRATargetNames()}, 1); err != nil {
					b.Fatal(err)
				}
			}
			tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-5, MaxGradNorm: 1})
			if err != nil {
				b.Fatal(err)
			}
			batch := benchPolicyBatch()
			ctx := context.Background()
			lossCfg := PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.28, KLCoef: 0.01}
			if _, err := tr.PolicyStep(ctx, batch, lossCfg); err != nil { // compile outside the timing
				b.Fatal(err)
			}
			b.ResetTimer()
			tokens := 0
			peak := peakTotalHeap(200*time.Microsecond, func() {
				for b.Loop() {
					if _, err := tr.PolicyStep(ctx, batch, lossCfg); err != nil {
						b.Fatal(err)
					}
					tokens += 8 * 128
				}
			})
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(peak-base)/(1<<20), "peak-MiB")
			b.ReportMetric(float64(m.NumAdapterParameters()), "adapter-params")
		})
	}
}
