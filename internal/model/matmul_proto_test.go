package model

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ssp-project/ssp/internal/fastdot"
)

// Prototypes of a project-owned float32 matmul for the pure-Go backend,
// measured against the backend's own DotGeneral and against the kernel the
// model uses (internal/fastdot) on the benchmark model's shapes (see
// docs/benchmarks-model.md, "The product kernel"). The prototypes are not
// used by the model; they show what packing and wider tiles would add.

// protoKernel computes a rows×cols tile of a·bᵀ from a packed k-major
// (ap[kk*rows+r]) and b packed k-major (bp[kk*cols+q]), writing row r of
// the tile at out[r*ldc:].
type protoKernel struct {
	rows, cols int
	tile       func(ap, bp []float32, k int, out []float32, ldc int)
}

// protoKernels are the prototype kernels by name; a build with
// GOEXPERIMENT=simd on amd64 adds "simd".
var protoKernels = map[string]protoKernel{"go": {2, 4, tileGo2x4}}

// tileGo2x4 is a scalar 2×4 register tile: eight accumulators fit the
// sixteen floating-point registers of amd64 without spilling (4×4 spills
// and runs slower).
func tileGo2x4(ap, bp []float32, k int, out []float32, ldc int) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	ap, bp = ap[:k*2], bp[:k*4]
	for kk := range k {
		a := ap[kk*2 : kk*2+2 : kk*2+2]
		b := bp[kk*4 : kk*4+4 : kk*4+4]
		a0, a1 := a[0], a[1]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
	}
	copy(out[:4], []float32{c00, c01, c02, c03})
	copy(out[ldc:ldc+4], []float32{c10, c11, c12, c13})
}

// protoMatmul computes c[M,N] = a[M,K]·b[N,K]ᵀ (the layout of x·Wᵀ).
func protoMatmul(kern protoKernel, a, b, c []float32, m, n, k, workers int) {
	protoMatmulPacked(kern, a, protoPack(kern, b, n, k), c, m, n, k, workers)
}

// protoPack packs b [N,K] into panels of kern.cols rows, k-major: what a
// fast path would keep for weights between steps.
func protoPack(kern protoKernel, b []float32, n, k int) []float32 {
	W := kern.cols
	np := (n + W - 1) / W
	bp := make([]float32, np*k*W)
	for j := range n {
		p, q := j/W, j%W
		for kk := range k {
			bp[(p*k+kk)*W+q] = b[j*k+kk]
		}
	}
	return bp
}

// protoMatmulPacked multiplies by packed panels bp: each group of
// kern.rows rows of a is packed in turn and multiplied by every panel;
// groups are split across workers goroutines.
func protoMatmulPacked(kern protoKernel, a, bp, c []float32, m, n, k, workers int) {
	R, W := kern.rows, kern.cols
	np := (n + W - 1) / W
	ldc := np * W
	groups := (m + R - 1) / R
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ap := make([]float32, k*R)
			out := make([]float32, R*ldc)
			for gi := w * groups / workers; gi < (w+1)*groups/workers; gi++ {
				clear(ap)
				for r := range R {
					if i := gi*R + r; i < m {
						for kk, v := range a[i*k : (i+1)*k] {
							ap[kk*R+r] = v
						}
					}
				}
				for p := range np {
					kern.tile(ap, bp[p*k*W:(p+1)*k*W], k, out[p*W:], ldc)
				}
				for r := range R {
					if i := gi*R + r; i < m {
						copy(c[i*n:(i+1)*n], out[r*ldc:])
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestProtoMatmul(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][3]int{{1, 1, 1}, {5, 7, 3}, {8, 130, 64}, {33, 17, 129}} {
		m, n, k := s[0], s[1], s[2]
		a, b := randFloats(rng, m*k), randFloats(rng, n*k)
		for name, kern := range protoKernels {
			c := make([]float32, m*n)
			protoMatmul(kern, a, b, c, m, n, k, 2)
			for i := range m {
				for j := range n {
					var want float64
					for kk := range k {
						want += float64(a[i*k+kk]) * float64(b[j*k+kk])
					}
					if math.Abs(float64(c[i*n+j])-want) > 1e-4*float64(k) {
						t.Fatalf("%s %v: c[%d,%d] = %g, want %g", name, s, i, j, c[i*n+j], want)
					}
				}
			}
		}
	}
}

func randFloats(rng *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}

// processCPU is the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMatmulPrototype reports, per shape [M,K]·[N,K]ᵀ, GFLOP/s of wall
// time and GFLOP per CPU-second (which other jobs on a shared machine
// disturb less) for the pure-Go backend's DotGeneral (as the model runs
// it) and for protoMatmul with each prototype kernel on one and two
// goroutines, packing the second operand in each call or once before
// (as weights could be kept).
func BenchmarkMatmulPrototype(b *testing.B) {
	backend, err := Backend("go")
	if err != nil {
		b.Fatal(err)
	}
	shapes := []struct {
		name    string
		m, n, k int
	}{
		{"train-gate-up", 1024, 384, 128},
		{"train-down", 1024, 128, 384},
		{"train-logits", 1024, 2048, 128},
		{"decode-gate-up", 8, 384, 128},
		{"decode-logits", 8, 2048, 128},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		av, bv := randFloats(rng, s.m*s.k), randFloats(rng, s.n*s.k)
		flops := 2 * float64(s.m*s.n*s.k)
		report := func(b *testing.B, cpu time.Duration) {
			n := float64(b.N)
			b.ReportMetric(flops*n/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(flops*n/cpu.Seconds()/1e9, "GFLOP/cpu-s")
		}
		for _, fast := range []bool{false, true} {
			name := "/simplego"
			if fast {
				name = "/fastdot"
			}
			b.Run(s.name+name, func(b *testing.B) {
				defer fastdot.SetEnabled(fastdot.Installed())
				fastdot.SetEnabled(fast)
				exec := MustNewExec(backend, func(x, w *Node) *Node {
					return DotGeneral(x, []int{1}, nil, w, []int{1}, nil)
				})
				defer exec.Finalize()
				x := tensors.FromFlatDataAndDimensions(av, s.m, s.k)
				w := tensors.FromFlatDataAndDimensions(bv, s.n, s.k)
				for _, t := range []*tensors.Tensor{x, w} { // inputs stay on the backend
					if err := t.MaterializeOnDevice(backend, false, 0); err != nil {
						b.Fatal(err)
					}
				}
				exec.MustExec(x, w)[0].FinalizeAll()
				cpu0 := processCPU()
				b.ResetTimer()
				for range b.N {
					exec.MustExec(x, w)[0].FinalizeAll()
				}
				b.StopTimer()
				report(b, processCPU()-cpu0)
			})
		}
		for _, name := range slices.Sorted(maps.Keys(protoKernels)) {
			kern := protoKernels[name]
			for _, workers := range []int{1, 2} {
				for _, prepacked := range []bool{false, true} {
					label := fmt.Sprintf("%s/%s-%dg", s.name, name, workers)
					if prepacked {
						label += "-prepacked"
					}
					b.Run(label, func(b *testing.B) {
						if workers > runtime.GOMAXPROCS(0) {
							b.Skip("fewer cores")
						}
						c := make([]float32, s.m*s.n)
						bp := protoPack(kern, bv, s.n, s.k)
						cpu0 := processCPU()
						b.ResetTimer()
						for range b.N {
							if !prepacked {
								bp = protoPack(kern, bv, s.n, s.k)
							}
							protoMatmulPacked(kern, av, bp, c, s.m, s.n, s.k, workers)
						}
						b.StopTimer()
						report(b, processCPU()-cpu0)
					})
				}
			}
		}
	}
}
