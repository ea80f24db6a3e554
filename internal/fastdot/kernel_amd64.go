package fastdot

import "golang.org/x/sys/cpu"

// groups32 adds, for each of rows rows of l and each of chunks blocks of 32
// columns, groups sums of eight products to out:
//
//	for g < groups: out[r][c] += l[r][8g]·rt[8g][c] + … + l[r][8g+7]·rt[8g+7][c]
//
// each group summed left to right from its first product and then added to
// out, every product and sum rounded to float32: the order of the backend's
// scalar loops, so the results are bitwise the same. rt is the right operand
// transposed (contraction index first); strides are in elements.
//
//go:noescape
func groups32(l *float32, lStride int, rt *float32, rtStride int, out *float32, outStride int, rows, groups, chunks int)

// haveKernel: the kernel needs AVX (VBROADCASTSS, VMULPS and VADDPS on
// 256-bit registers).
var haveKernel = cpu.X86.HasAVX
