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
			if diff > 2e-3 {
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
			if diff > 2e-3 {
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
			if d := math.Abs(float64(grads.Loss - wantLoss)); d > 1e-4 {
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
				if rel > 2e-3 {
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
