//go:build goexperiment.simd && amd64

package model

import "simd/archsimd"

// With GOEXPERIMENT=simd (Go 1.26, amd64) the prototype gains a vector
// kernel: a 4×16 tile held in eight 8-wide registers, one fused
// multiply-add per register and contraction step.
func init() { protoKernels["simd"] = protoKernel{4, 16, tileSIMD4x16} }

func tileSIMD4x16(ap, bp []float32, k int, out []float32, ldc int) {
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x8
	ap, bp = ap[:k*4], bp[:k*16]
	for kk := range k {
		b0 := archsimd.LoadFloat32x8Slice(bp[kk*16:])
		b1 := archsimd.LoadFloat32x8Slice(bp[kk*16+8:])
		a := ap[kk*4 : kk*4+4 : kk*4+4]
		x := archsimd.BroadcastFloat32x8(a[0])
		c00 = x.MulAdd(b0, c00)
		c01 = x.MulAdd(b1, c01)
		x = archsimd.BroadcastFloat32x8(a[1])
		c10 = x.MulAdd(b0, c10)
		c11 = x.MulAdd(b1, c11)
		x = archsimd.BroadcastFloat32x8(a[2])
		c20 = x.MulAdd(b0, c20)
		c21 = x.MulAdd(b1, c21)
		x = archsimd.BroadcastFloat32x8(a[3])
		c30 = x.MulAdd(b0, c30)
		c31 = x.MulAdd(b1, c31)
	}
	for r, row := range [4][2]archsimd.Float32x8{{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}} {
		row[0].StoreSlice(out[r*ldc:])
		row[1].StoreSlice(out[r*ldc+8:])
	}
}
