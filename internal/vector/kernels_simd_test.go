//go:build goexperiment.simd && amd64

package vector

// The same int8 kernel written with Go's simd experiment (archsimd), kept
// as a test so the two approaches can be measured side by side:
//
//	GOEXPERIMENT=simd go test -run SIMD -bench 'Kernel|SIMD' ./internal/vector

import (
	"github.com/ssp-project/ssp/internal/fixtures"
	"math/rand/v2"
	"simd/archsimd"
	"testing"
)

func dotI8SIMD(a, b []int8) int32 {
	ones := archsimd.BroadcastInt16x16(1)
	var acc archsimd.Int32x8
	n := len(a) &^ 31
	for i := 0; i < n; i += 32 {
		x := archsimd.LoadInt8x32Slice(a[i : i+32])
		y := archsimd.LoadInt8x32Slice(b[i : i+32])
		p := x.Abs().AsUint8x32().DotProductPairsSaturated(y.CopySign(x))
		acc = acc.Add(p.DotProductPairs(ones))
	}
	var lanes [8]int32
	acc.Store(&lanes)
	s := lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7]
	if n < len(a) {
		s += dotI8Go(a[n:], b[n:len(a)])
	}
	return s
}

func TestSIMDKernelAgrees(t *testing.T) {
	if !archsimd.X86.AVX2() {
		fixtures.Missing(t, "a CPU with AVX2: this test checks the AVX2 kernels")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n < 700; n += 13 {
		a, b := make([]int8, n), make([]int8, n)
		for i := range a {
			a[i], b[i] = int8(rng.IntN(255)-127), int8(rng.IntN(255)-127)
		}
		if got, want := dotI8SIMD(a, b), dotI8Go(a, b); got != want {
			t.Fatalf("n=%d: simd %d, go %d", n, got, want)
		}
	}
}

func BenchmarkSIMDKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	x, q := make([]int8, 384), make([]int8, 384)
	for i := range x {
		x[i], q[i] = int8(rng.IntN(255)-127), int8(rng.IntN(255)-127)
	}
	var sink int32
	for b.Loop() {
		sink += dotI8SIMD(x, q)
	}
	_ = sink
}
