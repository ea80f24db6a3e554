package model

import (
	"context"
	"math"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// A checkpointed step and the one-program step from the same weights give
// the same statistics and the same updated weights.
//
// Tolerance: both paths run the same float32 operations; only the order in
// which gradient contributions are summed may differ, which moves a gradient
// by float32 rounding (~1e-7 relative). AdamW's first step divides each
// gradient by its own magnitude, so a weight moves by at most LR (1e-3) and
// a relative change δ of its gradient moves the update by about LR·δ·eps/|g|
// (≪ LR·δ); 1e-6 on weights and 1e-5 relative on the statistics leave room
// for rounding and still fail on any real difference (a weight whose
// gradient is missing or wrong moves by ~LR).
func TestActivationCheckpointing(t *testing.T) {
	untied := func(t *testing.T) *Model { // q/k norms, separate LM head
		m, err := Load(filepath.Join(fixturesDir(t), "qwen3"), LoadOptions{Backend: "go"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	threeLayers := func(t *testing.T) *Model { // a layer that is neither first nor last
		cfg := tinyConfig(t, "llama")
		cfg.NumHiddenLayers = 3
		m, err := Init(cfg, 4, LoadOptions{Backend: "go"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	models := []struct {
		name string
		load func(t *testing.T) *Model
	}{
		{"llama tied", func(t *testing.T) *Model { return tinyModel(t, "llama", 1) }},
		{"qwen2 bias", func(t *testing.T) *Model { return tinyModel(t, "qwen2", 2) }},
		{"qwen3 fixture", untied},
		{"llama 3 layers", threeLayers},
	}
	lossCfg := PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.28, KLCoef: 0.01}
	ctx := context.Background()
	for _, mc := range models {
		for _, micro := range []int{0, 2} {
			for _, kind := range []string{"policy", "lm"} {
				name := mc.name + " " + kind
				if micro > 0 {
					name += " micro-batched"
				}
				// One subtest per case, so a case without its fixture
				// skips alone and the others still run.
				t.Run(name, func(t *testing.T) {
					var stats [2]StepStats
					var trained [2]*Model
					for i, checkpointing := range []bool{false, true} {
						m := mc.load(t)
						tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-3, WeightDecay: 0.01, MaxGradNorm: 1,
							MicroBatchSize: micro, ActivationCheckpointing: checkpointing})
						if err != nil {
							t.Fatal(err)
						}
						batch := policyBatch(t, m)
						if kind == "policy" {
							stats[i], err = tr.PolicyStep(ctx, batch, lossCfg)
						} else {
							stats[i], err = tr.LMStep(ctx, batch.Sequences, batch.LossMask)
						}
						if err != nil {
							t.Fatalf("%s micro %d %s checkpointing %v: %v", mc.name, micro, kind, checkpointing, err)
						}
						trained[i] = m
					}
					plain, ckpt := stats[0], stats[1]
					for _, v := range []struct {
						what      string
						got, want float64
					}{
						{"loss", ckpt.Loss, plain.Loss}, {"policy loss", ckpt.PolicyLoss, plain.PolicyLoss},
						{"KL", ckpt.KL, plain.KL}, {"entropy", ckpt.Entropy, plain.Entropy},
						{"clip fraction", ckpt.ClipFraction, plain.ClipFraction}, {"grad norm", ckpt.GradNorm, plain.GradNorm},
					} {
						if math.Abs(v.got-v.want) > 1e-5*math.Max(1, math.Abs(v.want)) {
							t.Errorf("%s: %s %g with checkpointing, %g without", name, v.what, v.got, v.want)
						}
					}
					if ckpt.Tokens != plain.Tokens || !(plain.GradNorm > 0) {
						t.Errorf("%s: stats %+v with checkpointing, %+v without", name, ckpt, plain)
					}
					worst, worstName := 0.0, ""
					for _, s := range trained[0].specs {
						a, err := trained[0].weightFloat32(s.name)
						if err != nil {
							t.Fatal(err)
						}
						b, err := trained[1].weightFloat32(s.name)
						if err != nil {
							t.Fatal(err)
						}
						if d := maxAbsDiff(t, b, a); d > worst {
							worst, worstName = d, s.name
						}
					}
					t.Logf("%s: loss %.6f, max |Δweight| %.2g (%s)", name, plain.Loss, worst, worstName)
					if worst > 1e-6 {
						t.Errorf("%s: updated weights differ by %g (%s)", name, worst, worstName)
					}
					trained[0].Close()
					trained[1].Close()
				})
			}
		}
	}
}

// Mixed precision: the checkpointed step keeps its activations and passes
// gradients between layers in bfloat16, as the one-program step does
// inside its graph, so the two agree up to the order of float32 sums. The
// weight tolerance is a tenth of LR: a missing or wrong gradient moves a
// weight by about LR in AdamW's first step.
func TestActivationCheckpointingBFloat16(t *testing.T) {
	dir := filepath.Join(fixturesDir(t), "qwen3")
	var losses [2]float64
	var weights [2][]float32
	for i, checkpointing := range []bool{false, true} {
		m, err := Load(dir, LoadOptions{Backend: "go", ComputeDType: "bfloat16"})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-3, ActivationCheckpointing: checkpointing})
		if err != nil {
			t.Fatal(err)
		}
		stats, err := tr.LMStep(context.Background(), patternData(), nil)
		if err != nil {
			t.Fatal(err)
		}
		losses[i] = stats.Loss
		if weights[i], err = m.weightFloat32("model.layers.0.mlp.down_proj.weight"); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	d := maxAbsDiff(t, weights[1], weights[0])
	t.Logf("bfloat16: loss %.6f vs %.6f, max |Δweight| %.2g", losses[1], losses[0], d)
	if math.Abs(losses[1]-losses[0]) > 1e-4 || d > 1e-4 {
		t.Errorf("bfloat16 checkpointed step: loss %g vs %g, weights differ by %g", losses[1], losses[0], d)
	}
}

// BenchmarkActivationCheckpointing takes LM steps on 2 sequences of 512
// tokens of a 4-layer model (hidden 256, 8 heads) with and without
// checkpointing, and reports the peak Go heap during a step above the heap
// before it (the pure-Go backend allocates its buffers on the Go heap and
// pools freed ones; the garbage collector runs at GOGC=10 so the heap
// follows the live buffers closely). The figures are in docs/model.md.
func BenchmarkActivationCheckpointing(b *testing.B) {
	cfg, err := ParseConfig([]byte(`{"model_type": "llama", "hidden_size": 256, "intermediate_size": 768,
		"num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 2048,
		"max_position_embeddings": 512, "tie_word_embeddings": true}`))
	if err != nil {
		b.Fatal(err)
	}
	seqs := benchPrompts(2, 512)
	for _, checkpointing := range []bool{false, true} {
		name := "off"
		if checkpointing {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			m, err := Init(cfg, 1, LoadOptions{Backend: "go"})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-5, ActivationCheckpointing: checkpointing})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := tr.LMStep(ctx, seqs, nil); err != nil { // compile outside the timing
				b.Fatal(err)
			}
			defer debug.SetGCPercent(debug.SetGCPercent(10))
			var peak uint64
			b.ResetTimer()
			for b.Loop() {
				runtime.GC() // twice: the backend's buffer pools keep freed buffers for one cycle
				runtime.GC()
				base := heapBytes()
				var stepErr error
				top := peakTotalHeap(time.Millisecond, func() { _, stepErr = tr.LMStep(ctx, seqs, nil) })
				if stepErr != nil {
					b.Fatal(stepErr)
				}
				peak = max(peak, top-base)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/step")
		})
	}
}

// heapBytes is the Go heap occupied by objects, live or not yet swept.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakTotalHeap runs fn and returns the highest Go heap seen while it ran,
// sampled every interval.
func peakTotalHeap(interval time.Duration, fn func()) uint64 {
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		top := heapBytes()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- top
				return
			case <-tick.C:
				top = max(top, heapBytes())
			}
		}
	}()
	fn()
	close(stop)
	return <-done
}
