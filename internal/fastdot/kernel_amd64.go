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

// groupsT is groups32 with the roles turned: the eight lanes are eight
// rows of the left operand, given transposed (lt: [k][8]), and each of the
// n rows of r (the right operand as it is, stride rStride) gives one row of
// ot ([n][8], the output transposed):
//
//	for g < groups: ot[j][i] += r[j][8g]·lt[8g][i] + … + r[j][8g+7]·lt[8g+7][i]
//
// in the same order and rounding.
//
//go:noescape
func groupsT(r *float32, rStride int, lt *float32, ot *float32, n, groups int)

// haveKernel: the kernel needs AVX (VBROADCASTSS, VMULPS and VADDPS on
// 256-bit registers).
var haveKernel = cpu.X86.HasAVX
