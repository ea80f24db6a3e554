package model

import (
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// More input shapes than GoMLX caches programs for: the executor is rebuilt
// instead of failing.
func TestProgramsManyShapes(t *testing.T) {
	backend, err := Backend("go")
	if err != nil {
		t.Fatal(err)
	}
	p := newPrograms(backend, mlctx.New(), func(_ *mlctx.Context, x *Node) *Node { return MulScalar(x, 2) })
	defer p.close()
	for n := 1; n <= maxPrograms+8; n++ {
		out, err := p.run(shapeKey(n), tensors.FromFlatDataAndDimensions(make([]float32, n), n))
		if err != nil {
			t.Fatalf("shape %d: %v", n, err)
		}
		if got := out[0].Shape().Dimensions[0]; got != n {
			t.Fatalf("shape %d: output %d", n, got)
		}
	}
}
