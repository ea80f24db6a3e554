package model

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// Chunking the LM head changes no result: log-probs, LM loss and gradients,
// and a PPO step's statistics and updated weights are those of the
// whole-sequence head, on every fixture family, for chunks that divide the
// sequences and chunks that leave a short last one.
//
// Tolerance: the chunked head runs the same float32 operations on slices of
// the positions; only the order in which the LM head's gradient is summed
// over positions changes (chunk by chunk), which moves it by float32
// rounding. A chunk boundary handled wrongly (a shifted target or input, a
// dropped position) changes log-probs by O(1) and gradients by a sizeable
// fraction.
func TestLogProbChunks(t *testing.T) {
	ctx := context.Background()
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			_, dir := loadFixtureModel(t, family)
			ref := loadReference(t, dir, "reference.safetensors")
			ids := ref.ids("case1_input_ids")
			// Ragged rows: the fixture's rows and shorter prefixes of them.
			seqs := append([][]int32{}, ids...)
			for i, row := range ids {
				seqs = append(seqs, row[:len(row)-2-i])
			}
			score := func(chunk int) ([][]float32, *Gradients) {
				// A fresh model: compiled programs are kept per shape.
				m, _ := loadFixtureModel(t, family)
				defer m.Close()
				m.logprobChunk = chunk
				lp, err := m.TokenLogProbs(ctx, seqs, nil)
				if err != nil {
					t.Fatal(err)
				}
				grads, err := m.LMGradients(ctx, ids)
				if err != nil {
					t.Fatal(err)
				}
				return lp, grads
			}
			wholeLP, whole := score(-1)
			for _, chunk := range []int{1, 3, 4} {
				lp, grads := score(chunk)
				worst := 0.0
				for i := range seqs {
					worst = math.Max(worst, maxAbsDiff(t, lp[i], wholeLP[i]))
				}
				if worst > 1e-5 {
					t.Errorf("chunk %d: log-probs differ by %g", chunk, worst)
				}
				if d := math.Abs(float64(grads.Loss - whole.Loss)); d > 1e-6 {
					t.Errorf("chunk %d: loss %g, whole %g", chunk, grads.Loss, whole.Loss)
				}
				worstRel := 0.0
				for name, want := range whole.Grads {
					scale := 0.0
					for _, v := range want {
						scale = math.Max(scale, math.Abs(float64(v)))
					}
					worstRel = math.Max(worstRel, maxAbsDiff(t, grads.Grads[name], want)/math.Max(scale, 1e-12))
				}
				t.Logf("chunk %d: max |Δlogp| %.2g, max relative gradient difference %.2g", chunk, worst, worstRel)
				if worstRel > 1e-5 {
					t.Errorf("chunk %d: gradients differ by %g (relative)", chunk, worstRel)
				}
			}
		})
	}
}

// A PPO step with a chunked head (plain and checkpointed, with
// micro-batches) equals the whole-sequence step: same statistics, same
// updated weights (tolerances as in TestActivationCheckpointing).
func TestLogProbChunksPolicyStep(t *testing.T) {
	ctx := context.Background()
	lossCfg := PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.28, DualClip: 3, KLCoef: 0.01, KLClamp: 10}
	for _, checkpointing := range []bool{false, true} {
		var stats []StepStats
		var trained []*Model
		for _, chunk := range []int{-1, 2} {
			m, _ := loadFixtureModel(t, "qwen3")
			m.logprobChunk = chunk
			tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-3, MaxGradNorm: 1, MicroBatchSize: 2,
				ActivationCheckpointing: checkpointing})
			if err != nil {
				t.Fatal(err)
			}
			st, err := tr.PolicyStep(ctx, policyBatch(t, m), lossCfg)
			if err != nil {
				t.Fatal(err)
			}
			stats, trained = append(stats, st), append(trained, m)
		}
		name := fmt.Sprintf("checkpointing %v", checkpointing)
		whole, chunked := stats[0], stats[1]
		for _, v := range []struct {
			what      string
			got, want float64
		}{
			{"loss", chunked.Loss, whole.Loss}, {"policy loss", chunked.PolicyLoss, whole.PolicyLoss},
			{"KL", chunked.KL, whole.KL}, {"entropy", chunked.Entropy, whole.Entropy},
			{"clip fraction", chunked.ClipFraction, whole.ClipFraction}, {"grad norm", chunked.GradNorm, whole.GradNorm},
		} {
			if math.Abs(v.got-v.want) > 1e-5*math.Max(1, math.Abs(v.want)) {
				t.Errorf("%s: %s %g chunked, %g whole", name, v.what, v.got, v.want)
			}
		}
		worst := 0.0
		for _, s := range trained[0].specs {
			a, err := trained[0].weightFloat32(s.name)
			if err != nil {
				t.Fatal(err)
			}
			b, err := trained[1].weightFloat32(s.name)
			if err != nil {
				t.Fatal(err)
			}
			worst = math.Max(worst, maxAbsDiff(t, b, a))
		}
		t.Logf("%s: loss %.6f, max |Δweight| %.2g", name, whole.Loss, worst)
		if worst > 1e-6 || !(whole.GradNorm > 0) {
			t.Errorf("%s: updated weights differ by %g (grad norm %g)", name, worst, whole.GradNorm)
		}
		trained[0].Close()
		trained[1].Close()
	}
}

// peakHeap runs fn and returns the Go heap's peak above its level before fn
// (the pure-Go backend allocates its buffers on the Go heap; with the
// collector at GOGC=10 the heap follows the live buffers closely).
func peakHeap(t *testing.T, fn func()) uint64 {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC() // twice: the backend's buffer pools keep freed buffers for one cycle
	runtime.GC()
	base := heapBytes()
	return peakTotalHeap(200*time.Microsecond, fn) - base
}

// With a large vocabulary the head dominates a step's memory: chunked, the
// step never holds a [B, T, V] tensor. Here B·T·V float32 is 32 MiB; the
// whole-sequence head peaks at several times that, the chunked one stays
// below it.
func TestLogProbChunksMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement")
	}
	cfg, err := ParseConfig([]byte(`{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 8192,
		"max_position_embeddings": 256, "tie_word_embeddings": true}`))
	if err != nil {
		t.Fatal(err)
	}
	const batch, length, chunk = 4, 256, 8
	fullLogits := uint64(batch * length * cfg.VocabSize * 4)
	var seqs [][]int32
	for b := range batch {
		seq := make([]int32, length)
		for j := range seq {
			seq[j] = int32((b*7919 + j*104729) % cfg.VocabSize)
		}
		seqs = append(seqs, seq)
	}
	ctx := context.Background()
	peaks := map[int]uint64{}
	for _, chunk := range []int{-1, chunk} {
		m, err := Init(cfg, 1, LoadOptions{Backend: "go", LogProbChunkTokens: chunk})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-5})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.LMStep(ctx, seqs, nil); err != nil { // compile outside the measurement
			t.Fatal(err)
		}
		peaks[chunk] = peakHeap(t, func() {
			if _, err := tr.LMStep(ctx, seqs, nil); err != nil {
				t.Fatal(err)
			}
		})
		m.Close()
	}
	t.Logf("peak heap of an LM step, %d×%d tokens, vocabulary %d: whole sequence %.1f MiB, chunks of %d %.1f MiB ([B, T, V] float32: %.0f MiB)",
		batch, length, cfg.VocabSize, float64(peaks[-1])/(1<<20), chunk, float64(peaks[chunk])/(1<<20), float64(fullLogits)/(1<<20))
	if peaks[chunk] >= fullLogits {
		t.Errorf("chunked step peaked at %d bytes, more than one [B, T, V] tensor (%d)", peaks[chunk], fullLogits)
	}
	if peaks[-1] < fullLogits {
		t.Errorf("whole-sequence step peaked at %d bytes, less than its [B, T, V] logits (%d): the measurement is broken", peaks[-1], fullLogits)
	}
}
