package encoder

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ssp-project/ssp/internal/model"
)

// TestGELUIsTheErfForm pins BERT's "gelu": the tanh approximation differs
// by up to about 1e-3, too little for vector parity on small models to see.
func TestGELUIsTheErfForm(t *testing.T) {
	backend, err := model.Backend("go")
	if err != nil {
		t.Fatal(err)
	}
	xs := []float32{-4, -3, -2.5, -1.7, -1, -0.5, -0.1, 0, 0.1, 0.5, 1, 1.7, 2.5, 3, 4}
	exec := MustNewExec(backend, gelu)
	got, err := tensors.CopyFlatData[float32](exec.MustExec(tensors.FromValue(xs))[0])
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range xs {
		want := 0.5 * float64(x) * (1 + math.Erf(float64(x)/math.Sqrt2))
		if math.Abs(float64(got[i])-want) > 1e-6 {
			t.Errorf("gelu(%g) = %g, want %g", x, got[i], want)
		}
	}
}
