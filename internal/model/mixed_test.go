package model

import (
	"context"
	"path/filepath"
	"testing"
)

// Mixed precision (float32 master weights, bfloat16 compute) stays close to
// float32 and can take a training step.
func TestBFloat16Compute(t *testing.T) {
	dir := filepath.Join(fixturesDir(t), "qwen3")
	m, err := Load(dir, LoadOptions{Backend: "go", ComputeDType: "bfloat16"})
	if err != nil {
		t.Fatal(err)
	}
	ref := loadReference(t, dir, "reference.safetensors")
	logits, err := m.Logits(context.Background(), ref.ids("case1_input_ids"), nil)
	if err != nil {
		t.Fatal(err)
	}
	diff := maxAbsDiff(t, logits.Data, ref.floats("case1_logits"))
	t.Logf("bfloat16 compute: max |Δlogit| = %.3g", diff)
	if diff > 0.15 || diff == 0 {
		t.Errorf("bfloat16 logits differ by %g", diff)
	}
	tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.LMStep(context.Background(), ref.ids("case1_input_ids"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, LoadOptions{Backend: "go", DType: "bfloat16"}); err != nil {
		t.Fatal(err)
	}
}
