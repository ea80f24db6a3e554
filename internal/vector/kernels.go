package vector

// Inner-product kernels. Each has a pure-Go version, used on every CPU, and
// may be replaced at start-up by an assembly version (kernels_amd64.go) when
// the CPU has the instructions for it. The batched forms score one stored
// vector against four queries so that the vector is loaded once for all
// four; queries of a batch lie at q[j*stride:], j = 0..3.

var (
	dotI8   = dotI8Go
	dot4I8  = dot4I8Go
	dotF16  = dotF16Go
	dot4F16 = dot4F16Go
	// kernelName names the kernels in use, for benchmarks and logs.
	kernelName = "go"
)

func dotI8Go(a, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += int32(a[i]) * int32(b[i])
		s1 += int32(a[i+1]) * int32(b[i+1])
		s2 += int32(a[i+2]) * int32(b[i+2])
		s3 += int32(a[i+3]) * int32(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return s0 + s1 + s2 + s3
}

func dot4I8Go(x, q []int8, stride int, out *[4]int32) {
	for j := range 4 {
		out[j] = dotI8Go(x, q[j*stride:j*stride+len(x)])
	}
}

func dotF16Go(x []uint16, q []float32) float32 {
	q = q[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += halfTable[x[i]] * q[i]
		s1 += halfTable[x[i+1]] * q[i+1]
		s2 += halfTable[x[i+2]] * q[i+2]
		s3 += halfTable[x[i+3]] * q[i+3]
	}
	for ; i < len(x); i++ {
		s0 += halfTable[x[i]] * q[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dot4F16Go(x []uint16, q []float32, stride int, out *[4]float32) {
	for j := range 4 {
		out[j] = dotF16Go(x, q[j*stride:j*stride+len(x)])
	}
}
