package vector

import "golang.org/x/sys/cpu"

// asmAvailable reports whether this CPU runs the assembly kernels.
var asmAvailable bool

// Assembly kernels (kernels_amd64.s). Each handles a prefix whose length is
// a multiple of its vector width; the Go wrappers add the tail.

//go:noescape
func dotI8AVX2(a, b *int8, n int) int32

//go:noescape
func dot4I8AVX2(x, q *int8, stride, n int, out *[4]int32)

//go:noescape
func dotF16AVX2(x *uint16, q *float32, n int) float32

//go:noescape
func dot4F16AVX2(x *uint16, q *float32, stride, n int, out *[4]float32)

func init() {
	// AVX2 for the integer kernels; FMA and F16C for the float16 ones.
	// x/sys/cpu has no F16C flag, but every x86 CPU with AVX2 and FMA has
	// F16C too. cpu.X86.HasAVX2 also requires the OS to save YMM registers.
	asmAvailable = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	if asmAvailable {
		useAVX2()
	}
}

func useAVX2() {
	dotI8, dot4I8, dotF16, dot4F16 = dotI8Asm, dot4I8Asm, dotF16Asm, dot4F16Asm
	kernelName = "avx2"
}

func useGo() {
	dotI8, dot4I8, dotF16, dot4F16 = dotI8Go, dot4I8Go, dotF16Go, dot4F16Go
	kernelName = "go"
}

func dotI8Asm(a, b []int8) int32 {
	n := len(a) &^ 31
	var s int32
	if n > 0 {
		s = dotI8AVX2(&a[0], &b[0], n)
	}
	if n < len(a) {
		s += dotI8Go(a[n:], b[n:len(a)])
	}
	return s
}

func dot4I8Asm(x, q []int8, stride int, out *[4]int32) {
	_ = q[3*stride+len(x)-1] // the assembly does not check bounds
	n := len(x) &^ 31
	if n > 0 {
		dot4I8AVX2(&x[0], &q[0], stride, n, out)
	} else {
		*out = [4]int32{}
	}
	if n < len(x) {
		for j := range 4 {
			out[j] += dotI8Go(x[n:], q[j*stride+n:j*stride+len(x)])
		}
	}
}

func dotF16Asm(x []uint16, q []float32) float32 {
	n := len(x) &^ 15
	var s float32
	if n > 0 {
		s = dotF16AVX2(&x[0], &q[0], n)
	}
	if n < len(x) {
		s += dotF16Go(x[n:], q[n:len(x)])
	}
	return s
}

func dot4F16Asm(x []uint16, q []float32, stride int, out *[4]float32) {
	_ = q[3*stride+len(x)-1]
	n := len(x) &^ 15
	if n > 0 {
		dot4F16AVX2(&x[0], &q[0], stride, n, out)
	} else {
		*out = [4]float32{}
	}
	if n < len(x) {
		for j := range 4 {
			out[j] += dotF16Go(x[n:], q[j*stride+n:j*stride+len(x)])
		}
	}
}
