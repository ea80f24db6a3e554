package vector

import (
	"github.com/ssp-project/ssp/internal/fixtures"
	"math"
	"math/rand/v2"
	"testing"
)

// The assembly kernels must give the pure-Go results: exactly for int8,
// within float32 rounding for float16 (the summation order differs), on
// lengths around and between the vector widths.
func TestKernelsAgree(t *testing.T) {
	if !asmAvailable {
		fixtures.Missing(t, "a CPU with AVX2: this test checks the assembly kernels against the Go ones")
	}
	defer useAVX2()
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 384, 385, 768, 1000}
	for range 20 {
		lengths = append(lengths, 1+rng.IntN(600))
	}
	for _, n := range lengths {
		stride := n + rng.IntN(40)
		x := make([]int8, n)
		q := make([]int8, 3*stride+n)
		for i := range x {
			x[i] = int8(rng.IntN(255) - 127)
		}
		for i := range q {
			q[i] = int8(rng.IntN(255) - 127)
		}
		if n > 3 {
			x[0], x[1], q[0], q[1] = 127, -127, 127, -127 // the extremes
		}
		xh := make([]uint16, n)
		qf := make([]float32, 3*stride+n)
		for i := range xh {
			xh[i] = floatToHalf(float32(rng.NormFloat64()))
		}
		for i := range qf {
			qf[i] = float32(rng.NormFloat64())
		}

		var gi, ai [4]int32
		var gf, af [4]float32
		useGo()
		gd, gh := dotI8(x, q[:n]), dotF16(xh, qf[:n])
		dot4I8(x, q, stride, &gi)
		dot4F16(xh, qf, stride, &gf)
		useAVX2()
		ad, ah := dotI8(x, q[:n]), dotF16(xh, qf[:n])
		dot4I8(x, q, stride, &ai)
		dot4F16(xh, qf, stride, &af)

		if gd != ad || gi != ai {
			t.Fatalf("n=%d: int8 go %d %v, avx2 %d %v", n, gd, gi, ad, ai)
		}
		var ref float64
		for i := range xh {
			ref += float64(halfToFloat(xh[i])) * float64(qf[i])
		}
		tol := 1e-5 * math.Sqrt(float64(n)) * 4
		if math.Abs(float64(gh-ah)) > tol || math.Abs(float64(ah)-ref) > tol {
			t.Fatalf("n=%d: float16 go %v avx2 %v float64 %v", n, gh, ah, ref)
		}
		for j := range 4 {
			if math.Abs(float64(gf[j]-af[j])) > tol {
				t.Fatalf("n=%d query %d: float16 batch go %v avx2 %v", n, j, gf[j], af[j])
			}
		}
		if af[0] != af[0] || math.Abs(float64(af[0]-ah)) > tol {
			t.Fatalf("n=%d: batched %v, single %v", n, af[0], ah)
		}
	}
}

// go test -bench Kernel ./internal/vector: one 384-dimension inner product
// (single) and one vector against four queries (batch4), per kernel.
func BenchmarkKernel(b *testing.B) {
	const d = 384
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]int8, d)
	q := make([]int8, 4*d)
	xh := make([]uint16, d)
	qf := make([]float32, 4*d)
	for i := range x {
		x[i] = int8(rng.IntN(255) - 127)
		xh[i] = floatToHalf(float32(rng.NormFloat64()))
	}
	for i := range q {
		q[i] = int8(rng.IntN(255) - 127)
		qf[i] = float32(rng.NormFloat64())
	}
	defer useAVX2()
	for _, kern := range []string{"go", "avx2"} {
		if kern == "avx2" && !asmAvailable {
			continue
		}
		var o4 [4]int32
		var o4f [4]float32
		var sink float32
		set := func() {
			if kern == "go" {
				useGo()
			} else {
				useAVX2()
			}
		}
		b.Run("int8/single/"+kern, func(b *testing.B) {
			set()
			for b.Loop() {
				sink += float32(dotI8(x, q[:d]))
			}
		})
		b.Run("int8/batch4/"+kern, func(b *testing.B) {
			set()
			for b.Loop() {
				dot4I8(x, q, d, &o4)
			}
		})
		b.Run("float16/single/"+kern, func(b *testing.B) {
			set()
			for b.Loop() {
				sink += dotF16(xh, qf[:d])
			}
		})
		b.Run("float16/batch4/"+kern, func(b *testing.B) {
			set()
			for b.Loop() {
				dot4F16(xh, qf, d, &o4f)
			}
		})
		_ = sink
	}
}
