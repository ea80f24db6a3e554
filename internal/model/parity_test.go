package model

import (
	"context"
	"github.com/ssp-project/ssp/internal/safetensors"
	"math"
	"path/filepath"
	"testing"

	"github.com/ssp-project/ssp/internal/fixtures"
)

// fixturesDir is the shared reference fixtures beside the checkout.
func fixturesDir(t *testing.T) string {
	t.Helper()
	return fixtures.Shared(t, "hf")
}

var families = []string{"qwen2", "qwen3", "llama3"}

// Parity limits (float32, the pure-Go backend). Correct code differs from
// transformers by at most ~4e-6 in a logit, ~2e-6 in the loss and ~2e-6 in
// a gradient relative to the tensor's largest entry (float32 rounding in a
// different order of sums); the limits leave a margin of about five.
//
// Each real bug below was introduced by hand and fails these tests; the
// last column is the largest error it produced:
//
//	mutation                                         fails                                   observed
//	RMSNorm epsilon removed (llama.go rmsNorm)       Logits, LossAndGradients (all)          Δlogit 5.6e-4, rel. grad 2.5e-4
//	RoPE base ×2 (rope.go ropeInvFreq)               Logits, LossAndGradients (all), Rope    Δlogit 0.75
//	Llama 3.1 RoPE scaling off (rope.go)             Logits, LossAndGradients (llama3), Rope Δlogit 1.1
//	GQA: query head h uses kv head h % kv_heads      Logits, LossAndGradients (all)          Δlogit 3.3
//	  instead of h / group (llama.go layer)
//	Qwen3 q/k norm dropped (llama.go layer)          Logits, LossAndGradients (qwen3)        Δlogit 2.5
//	Qwen2 q/k/v bias dropped (llama.go layer)        Logits, LossAndGradients (qwen2)        Δlogit 1.5
const (
	logitTol   = 2e-5
	lossTol    = 1e-5
	relGradTol = 1e-5
)

type reference struct {
	t       *testing.T
	tensors map[string]*safetensors.Tensor
}

func loadReference(t *testing.T, dir, file string) reference {
	t.Helper()
	ts, err := safetensors.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return reference{t, ts}
}

func (r reference) ids(name string) [][]int32 {
	ten := r.tensors[name]
	if ten == nil {
		r.t.Fatalf("reference has no %s", name)
	}
	flat, err := ten.Int64()
	if err != nil {
		r.t.Fatal(err)
	}
	rows, cols := ten.Shape[0], ten.Shape[1]
	out := make([][]int32, rows)
	for i := range out {
		out[i] = make([]int32, cols)
		for j := range out[i] {
			out[i][j] = int32(flat[i*cols+j])
		}
	}
	return out
}

func (r reference) floats(name string) []float32 {
	ten := r.tensors[name]
	if ten == nil {
		r.t.Fatalf("reference has no %s", name)
	}
	f, err := ten.Float32()
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

func loadFixtureModel(t *testing.T, family string) (*Model, string) {
	t.Helper()
	dir := filepath.Join(fixturesDir(t), family)
	m, err := Load(dir, LoadOptions{Backend: "go"})
	if err != nil {
		t.Fatalf("load %s: %v", family, err)
	}
	return m, dir
}

func maxAbsDiff(t *testing.T, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("length %d, want %d", len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	return worst
}

func TestParityLogits(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			m, dir := loadFixtureModel(t, family)
			ref := loadReference(t, dir, "reference.safetensors")
			logits, err := m.Logits(context.Background(), ref.ids("case1_input_ids"), nil)
			if err != nil {
				t.Fatal(err)
			}
			diff := maxAbsDiff(t, logits.Data, ref.floats("case1_logits"))
			t.Logf("case1 max |Δlogit| = %.3g", diff)
			if diff > logitTol {
				t.Errorf("case1 logits differ by %g", diff)
			}

			full := ref.ids("case2_generated")
			prompt := ref.ids("case2_attention_mask")
			mask := make([][]int32, len(full))
			for b := range full {
				mask[b] = append(append([]int32(nil), prompt[b]...), make([]int32, len(full[b])-len(prompt[b]))...)
				for j := len(prompt[b]); j < len(full[b]); j++ {
					mask[b][j] = 1
				}
			}
			logits, err = m.Logits(context.Background(), full, mask)
			if err != nil {
				t.Fatal(err)
			}
			diff = maxAbsDiff(t, logits.Data, ref.floats("case2_full_logits"))
			t.Logf("case2 max |Δlogit| = %.3g", diff)
			if diff > logitTol {
				t.Errorf("case2 logits differ by %g", diff)
			}
		})
	}
}

func TestParityLossAndGradients(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			m, dir := loadFixtureModel(t, family)
			ref := loadReference(t, dir, "reference.safetensors")
			grads, err := m.LMGradients(context.Background(), ref.ids("case1_input_ids"))
			if err != nil {
				t.Fatal(err)
			}
			wantLoss := ref.floats("case3_loss")[0]
			t.Logf("loss %.7f, reference %.7f", grads.Loss, wantLoss)
			if d := math.Abs(float64(grads.Loss - wantLoss)); d > lossTol {
				t.Errorf("loss differs by %g", d)
			}
			refGrads := loadReference(t, dir, "reference_grads.safetensors")
			if len(refGrads.tensors) != len(grads.Grads) {
				t.Errorf("%d gradients, reference has %d", len(grads.Grads), len(refGrads.tensors))
			}
			worst := 0.0
			for name := range refGrads.tensors {
				got, ok := grads.Grads[name]
				if !ok {
					t.Errorf("no gradient for %s", name)
					continue
				}
				want := refGrads.floats(name)
				scale := 0.0
				for _, v := range want {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				rel := maxAbsDiff(t, got, want) / math.Max(scale, 1e-12)
				worst = math.Max(worst, rel)
				if rel > relGradTol {
					t.Errorf("%s: relative gradient error %g", name, rel)
				}
			}
			t.Logf("worst relative gradient error %.3g over %d tensors", worst, len(refGrads.tensors))
		})
	}
}

func TestParityGreedyGeneration(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			m, dir := loadFixtureModel(t, family)
			ref := loadReference(t, dir, "reference.safetensors")
			ids, mask := ref.ids("case2_input_ids"), ref.ids("case2_attention_mask")
			want := ref.ids("case2_generated")
			prompts := make([][]int32, len(ids))
			for b := range ids {
				for j, id := range ids[b] {
					if mask[b][j] != 0 {
						prompts[b] = append(prompts[b], id)
					}
				}
			}
			gens, err := m.Generate(context.Background(), GenerateRequest{Prompts: prompts, MaxNewTokens: 12})
			if err != nil {
				t.Fatal(err)
			}
			scores, err := m.TokenLogProbs(context.Background(), [][]int32{append(append([]int32(nil), prompts[0]...), gens[0].Tokens...)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for b, g := range gens {
				wantNew := want[b][len(ids[b]):]
				if len(g.Tokens) != len(wantNew) || g.FinishReason != FinishLength {
					t.Fatalf("row %d: %d tokens (%s), want %d", b, len(g.Tokens), g.FinishReason, len(wantNew))
				}
				for j := range wantNew {
					if g.Tokens[j] != wantNew[j] {
						t.Fatalf("row %d: generated %v, want %v", b, g.Tokens, wantNew)
					}
				}
			}
			// Rollout log-probs agree with scoring the finished sequence.
			p := len(prompts[0])
			for j, lp := range gens[0].LogProbs {
				if d := math.Abs(float64(lp - scores[0][p+j])); d > 1e-4 {
					t.Errorf("token %d: rollout log-prob %g, scored %g", j, lp, scores[0][p+j])
				}
			}
		})
	}
}

// TestRopeLlama3Scaling compares the Llama 3.1 frequency scaling with
// transformers' _compute_llama3_parameters, evaluated in float32 with numpy
// for Llama-3.1-8B's settings (head_dim 128, theta 500000, factor 8,
// low/high frequency factors 1 and 4, original context 8192): high
// frequencies are kept, low ones divided by 8, and indices 29-34 lie in the
// interpolated band.
func TestRopeLlama3Scaling(t *testing.T) {
	c := &Config{HeadDim: 128, Rope: RopeConfig{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1,
		HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}}
	want := map[int]float64{
		0: 1.0, 20: 0.016560440883040428, // kept
		29: 0.0021665706299245358, 30: 0.0013718936825171113, 31: 0.0008567514596506953,
		32: 0.0005248460220173001, 33: 0.0003126936499029398, 34: 0.0001785077911335975, // interpolated
		40: 3.428102354519069e-05, 52: 2.927499735960737e-06, 63: 3.068925877869333e-07, // divided by 8
	}
	got := ropeInvFreq(c)
	if len(got) != 64 {
		t.Fatalf("%d frequencies, want 64", len(got))
	}
	for i, w := range want {
		if d := math.Abs(float64(got[i])-w) / w; d > 1e-6 {
			t.Errorf("inv_freq[%d] = %.10g, transformers %.10g", i, got[i], w)
		}
	}
}
