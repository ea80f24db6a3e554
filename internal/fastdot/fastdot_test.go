package fastdot

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// needKernel skips only where the kernels cannot run: not amd64 or no AVX,
// or a GOAMD64=v3 build (see unfused.go). Where they can, a kernel that
// could not be installed fails the test instead of skipping it.
func needKernel(tb testing.TB) {
	tb.Helper()
	switch {
	case !haveKernel:
		tb.Skip("no AVX on this CPU, or not amd64")
	case backendMayFuse:
		tb.Skip("GOAMD64=v3 build: the backend's loops may fuse multiply-adds")
	case Unavailable() != "":
		tb.Fatalf("kernel cannot be installed: %s", Unavailable())
	}
}

func goBackend(t testing.TB) backends.Backend {
	b, err := backends.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// product runs lhs[batch, m, k] · rhs[batch, n, k]ᵀ on the backend.
func product(t testing.TB, b backends.Backend, lhs, rhs []float32, batch, m, n, k int) []float32 {
	exec := MustNewExec(b, func(x, w *Node) *Node {
		return DotGeneral(x, []int{2}, []int{0}, w, []int{2}, []int{0})
	})
	defer exec.Finalize()
	out := exec.MustExec(tensors.FromFlatDataAndDimensions(lhs, batch, m, k),
		tensors.FromFlatDataAndDimensions(rhs, batch, n, k))[0]
	defer out.FinalizeAll()
	return tensors.MustCopyFlatData[float32](out)
}

// TestBitwise: with the kernel installed the backend's products, on both its
// paths (small and large problems), are bitwise those of its own loops.
// (The backend's blocks are 32 × 32 for float32, so its large path takes
// products of more than 16,384 outputs; the direct path runs by rows when
// the left operand has fewer rows than the right, else by columns.)
// Mutations checked, each fails it: two products of a group swapped (in
// either kernel), a fused multiply-add instead of a product then a sum, a
// group started from the output instead of from its first product, the
// contraction tail of a block dropped (by rows, by columns), the last row of
// each part left out when a lone entry is spread over the cores, and the
// kernel by rows skipping the single-row loop.
func TestBitwise(t *testing.T) {
	needKernel(t)
	defer SetEnabled(Installed())
	b := goBackend(t)
	rng := rand.New(rand.NewPCG(7, 8))
	cases := []struct{ batch, m, n, k int }{
		{1, 1024, 384, 128},  // large: training projection
		{1, 300, 250, 200},   // large, every size padded in the blocks
		{1, 384, 128, 1024},  // small: a weight gradient
		{2, 8, 192, 128},     // small: a decode projection split in two
		{4, 37, 45, 101},     // small: column and contraction remainders
		{3, 2, 64, 64},       // small, too few rows for the kernel
		{32, 128, 128, 32},   // small: attention scores
		{32, 128, 32, 131},   // small: attention values over an odd length
		{1, 1024, 2048, 128}, // large: logits
		{1, 64, 256, 1024},   // small, one large entry: rows spread over the cores
		{3, 100, 45, 70},     // small, more rows than columns: by columns, with a remainder
		{1, 256, 40, 1024},   // the same, one large entry spread over the cores
	}
	for _, c := range cases {
		lhs := make([]float32, c.batch*c.m*c.k)
		rhs := make([]float32, c.batch*c.n*c.k)
		for i := range lhs {
			lhs[i] = float32(rng.NormFloat64())
		}
		for i := range rhs {
			rhs[i] = float32(rng.NormFloat64())
		}
		SetEnabled(false)
		want := product(t, b, lhs, rhs, c.batch, c.m, c.n, c.k)
		SetEnabled(true)
		got := product(t, b, lhs, rhs, c.batch, c.m, c.n, c.k)
		diff := 0
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				if diff < 3 {
					t.Errorf("%+v: element %d = %v, backend's loops give %v", c, i, got[i], want[i])
				}
				diff++
			}
		}
		if diff > 0 {
			t.Errorf("%+v: %d of %d elements differ", c, diff, len(want))
		}
	}
}

// TestBitwiseLayouts: operands whose contraction comes first (the weight
// gradient, packed transposed) or whose batch axis is not the first (packed
// by the backend's own copy) give the backend's results too. Mutation
// checked: the transposed packing stepping a row of blocks by one block
// fails it.
func TestBitwiseLayouts(t *testing.T) {
	needKernel(t)
	defer SetEnabled(Installed())
	b := goBackend(t)
	rng := rand.New(rand.NewPCG(9, 10))
	random := func(n int) *tensors.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensors.FromFlatDataAndDimensions(v, n)
	}
	cases := []struct {
		name    string
		lhs     []int
		rhs     []int
		product func(x, w *Node) *Node
	}{
		{"contraction first", []int{300, 200}, []int{300, 150}, func(x, w *Node) *Node {
			return DotGeneral(x, []int{0}, nil, w, []int{0}, nil)
		}},
		{"batch in the middle", []int{150, 3, 70}, []int{3, 130, 70}, func(x, w *Node) *Node {
			return DotGeneral(x, []int{2}, []int{1}, w, []int{2}, []int{0})
		}},
		{"two contracting axes", []int{2, 170, 9, 11}, []int{2, 9, 11, 120}, func(x, w *Node) *Node {
			return DotGeneral(x, []int{2, 3}, []int{0}, w, []int{1, 2}, []int{0})
		}},
	}
	for _, c := range cases {
		size := func(d []int) int {
			n := 1
			for _, x := range d {
				n *= x
			}
			return n
		}
		x, w := random(size(c.lhs)), random(size(c.rhs))
		run := func() []float32 {
			exec := MustNewExec(b, func(x, w *Node) *Node {
				return c.product(Reshape(x, c.lhs...), Reshape(w, c.rhs...))
			})
			defer exec.Finalize()
			out := exec.MustExec(x, w)[0]
			defer out.FinalizeAll()
			return tensors.MustCopyFlatData[float32](out)
		}
		SetEnabled(false)
		want := run()
		SetEnabled(true)
		got := run()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("%s: element %d = %v, backend's loops give %v", c.name, i, got[i], want[i])
				break
			}
		}
	}
}

// TestInstalledByDefault: importing the package installs the kernel on an
// amd64 CPU with AVX, and leaves it out under SSP_FASTDOT=0. It fails,
// rather than skips, when the backend's tables are not what the package
// expects, as after a GoMLX upgrade. Mutation checked: looking for a field
// the backend's buffers do not have fails it.
func TestInstalledByDefault(t *testing.T) {
	needKernel(t)
	if off := os.Getenv("SSP_FASTDOT") == "0"; Installed() == off {
		t.Fatalf("SSP_FASTDOT=%q, kernel installed: %v", os.Getenv("SSP_FASTDOT"), Installed())
	}
}

// BenchmarkProduct compares the backend's products with and without the
// kernel, side by side, on the benchmark model's training and decode shapes.
func BenchmarkProduct(b *testing.B) {
	needKernel(b)
	defer SetEnabled(Installed())
	be := goBackend(b)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range []struct {
		name           string
		batch, m, n, k int
	}{
		{"train-gate-up", 1, 1024, 384, 128},
		{"train-logits", 1, 1024, 2048, 128},
		{"train-weight-grad", 1, 384, 128, 1024},
		{"decode-logits", 2, 8, 1024, 128},
	} {
		lhs := make([]float32, s.batch*s.m*s.k)
		rhs := make([]float32, s.batch*s.n*s.k)
		for i := range lhs {
			lhs[i] = rng.Float32()
		}
		for i := range rhs {
			rhs[i] = rng.Float32()
		}
		for _, on := range []bool{false, true} {
			name := s.name + "/backend"
			if on {
				name = s.name + "/fastdot"
			}
			b.Run(name, func(b *testing.B) {
				SetEnabled(on)
				exec := MustNewExec(be, func(x, w *Node) *Node {
					return DotGeneral(x, []int{2}, []int{0}, w, []int{2}, []int{0})
				})
				defer exec.Finalize()
				x := tensors.FromFlatDataAndDimensions(lhs, s.batch, s.m, s.k)
				w := tensors.FromFlatDataAndDimensions(rhs, s.batch, s.n, s.k)
				for _, t := range []*tensors.Tensor{x, w} {
					if err := t.MaterializeOnDevice(be, false, 0); err != nil {
						b.Fatal(err)
					}
				}
				exec.MustExec(x, w)[0].FinalizeAll()
				b.ResetTimer()
				for range b.N {
					exec.MustExec(x, w)[0].FinalizeAll()
				}
				b.ReportMetric(2*float64(s.batch*s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
