package model

import (
	"slices"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// GoMLX v0.26's gradient of DotGeneral materialises the broadcast product
// of the output gradient and the other operand ([batch, M, N, K]) and then
// reduces it: for a [B·T, D] × [D, V] logits projection that is B·T·D·V
// floats, which makes training orders of magnitude slower than the forward
// pass. The matrix products of this package go through dot, which records
// each product's axes so that its gradient is computed as two products, the
// way every autodiff system does. Products built elsewhere keep GoMLX's own
// gradient.

// dotAxes remembers the contraction and batch axes of the DotGeneral nodes
// built by dot.
type dotAxesSpec struct {
	lhsContract, lhsBatch, rhsContract, rhsBatch []int
}

var (
	dotAxes     sync.Map // *Node -> dotAxesSpec
	gomlxDotVJP VJP
)

// init replaces GoMLX's DotGeneral gradient before any graph is built; for
// products not built by dot it defers to the original.
func init() {
	gomlxDotVJP = VJPRegistration[NodeTypeDotGeneral]
	VJPRegistration[NodeTypeDotGeneral] = dotVJP
}

// dot is DotGeneral with an efficient gradient. The output axes are
// [batch..., lhs free axes..., rhs free axes...].
func dot(lhs *Node, lhsContract, lhsBatch []int, rhs *Node, rhsContract, rhsBatch []int) *Node {
	out := DotGeneral(lhs, lhsContract, lhsBatch, rhs, rhsContract, rhsBatch)
	if out.Type() == NodeTypeDotGeneral {
		dotAxes.Store(out, dotAxesSpec{lhsContract, lhsBatch, rhsContract, rhsBatch})
	}
	return out
}

// forgetDots drops the recorded axes of a graph's products once its
// gradient has been built (or when it needs none).
func forgetDots(g *Graph) {
	dotAxes.Range(func(k, _ any) bool {
		if k.(*Node).Graph() == g {
			dotAxes.Delete(k)
		}
		return true
	})
}

func freeAxes(rank int, contract, batch []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(contract, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

func axisRange(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// dotVJP: with out = dot(lhs, rhs) and v = dL/dout,
// dL/dlhs = dot(v, rhs) over rhs's free axes and dL/drhs = dot(v, lhs) over
// lhs's free axes, transposed back to the operands' layouts.
func dotVJP(node *Node, vjpOutputs []*Node, outputShape shapes.Shape) []*Node {
	spec, ok := dotAxes.Load(node)
	if !ok {
		return gomlxDotVJP(node, vjpOutputs, outputShape)
	}
	s := spec.(dotAxesSpec)
	v := vjpOutputs[0]
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	nb := len(s.lhsBatch)
	lhsFree := freeAxes(lhs.Rank(), s.lhsContract, s.lhsBatch)
	rhsFree := freeAxes(rhs.Rank(), s.rhsContract, s.rhsBatch)
	vBatch := axisRange(0, nb)
	vLhsFree := axisRange(nb, len(lhsFree))
	vRhsFree := axisRange(nb+len(lhsFree), len(rhsFree))

	grad := func(other *Node, otherFree, otherContract, otherBatch []int, vOtherFree []int,
		this *Node, thisFree, thisContract, thisBatch []int) *Node {
		// Layout: [batch..., this free..., other's contracted axes in ascending order].
		g := DotGeneral(v, vOtherFree, vBatch, other, otherFree, otherBatch)
		nThisFree := len(thisFree)
		perm := make([]int, this.Rank())
		for i, a := range thisBatch {
			perm[a] = i
		}
		for j, a := range thisFree {
			perm[a] = nb + j
		}
		remaining := slices.Sorted(slices.Values(otherContract))
		for j, r := range remaining {
			k := slices.Index(otherContract, r)
			perm[thisContract[k]] = nb + nThisFree + j
		}
		identity := true
		for i, p := range perm {
			identity = identity && i == p
		}
		if identity {
			return g
		}
		return TransposeAllAxes(g, perm...)
	}
	return []*Node{
		grad(rhs, rhsFree, s.rhsContract, s.rhsBatch, vRhsFree, lhs, lhsFree, s.lhsContract, s.lhsBatch),
		grad(lhs, lhsFree, s.lhsContract, s.lhsBatch, vLhsFree, rhs, rhsFree, s.rhsContract, s.rhsBatch),
	}
}

// The pure-Go backend runs a product whose output has at most
// smallDotOutput elements (per batch entry) with a kernel that splits work
// only across batch entries: a product without batch axes, such as every
// projection of a decode step, runs on one core. splitDot gives such a
// product a batch axis of two halves of the other operand's rows, so that
// both halves run at once. Each output element is the same sum in the same
// order as before (the halves use the same kernel), so results are bitwise
// unchanged. The backend copies the weight it reshapes: out·in floats, little
// next to the rows·out·in multiply-adds that move to the second core.
const (
	smallDotOutput = 16 * 32 * 32 // the pure-Go backend's small-product bound (v0.26)
	minSplitWork   = 1 << 15      // multiply-adds below which a second core does not pay
)

// splitDot computes dot(x, [last], nil, w, [1], nil) for x [..., in] and
// w [out, in], split in two halves of w's rows when the product is small
// enough to run on one core and large enough to be worth two.
func splitDot(x, w *Node) *Node {
	in, out := w.Shape().Dimensions[1], w.Shape().Dimensions[0]
	rows := x.Shape().Size() / in
	if out%2 != 0 || rows*out > smallDotOutput || rows*out*in < minSplitWork {
		return dot(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	}
	x2 := BroadcastToDims(Reshape(x, 1, rows, in), 2, rows, in)
	w2 := Reshape(w, 2, out/2, in)
	y := dot(x2, []int{2}, []int{0}, w2, []int{2}, []int{0}) // [2, rows, out/2]
	dims := slices.Clone(x.Shape().Dimensions)
	dims[len(dims)-1] = out
	return Reshape(TransposeAllAxes(y, 1, 0, 2), dims...)
}
