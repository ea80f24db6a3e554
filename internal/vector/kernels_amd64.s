#include "textflag.h"

// Signed int8 inner products with AVX2. VPMADDUBSW multiplies unsigned by
// signed bytes, so a·b is computed as |a| · (b·sign(a)); with components in
// [-127, 127] each pair of products is at most 2·127·127 = 32258 and fits in
// the int16 lanes without saturating. VPMADDWD by ones widens to int32.

// func dotI8AVX2(a, b *int8, n int) int32
// n is a positive multiple of 32.
TEXT ·dotI8AVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ $0x0001000100010001, AX
	MOVQ AX, X7
	VPBROADCASTQ X7, Y7
	VPXOR Y0, Y0, Y0
	XORQ AX, AX

loopi8:
	VMOVDQU (SI)(AX*1), Y1
	VMOVDQU (DI)(AX*1), Y2
	VPSIGNB Y1, Y2, Y2
	VPABSB Y1, Y1
	VPMADDUBSW Y2, Y1, Y1
	VPMADDWD Y7, Y1, Y1
	VPADDD Y1, Y0, Y0
	ADDQ $32, AX
	CMPQ AX, CX
	JL loopi8

	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4E, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xB1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+24(FP)
	VZEROUPPER
	RET

// func dot4I8AVX2(x, q *int8, stride, n int, out *[4]int32)
// Scores x against the queries at q, q+stride, q+2·stride, q+3·stride.
// n is a positive multiple of 32.
TEXT ·dot4I8AVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ stride+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (DI)(BX*1), R8
	LEAQ (R8)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	MOVQ $0x0001000100010001, AX
	MOVQ AX, X7
	VPBROADCASTQ X7, Y7
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	XORQ AX, AX

loop4i8:
	VMOVDQU (SI)(AX*1), Y8
	VPABSB Y8, Y9

	VMOVDQU (DI)(AX*1), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y7, Y10, Y10
	VPADDD Y10, Y0, Y0

	VMOVDQU (R8)(AX*1), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y7, Y11, Y11
	VPADDD Y11, Y1, Y1

	VMOVDQU (R9)(AX*1), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y7, Y12, Y12
	VPADDD Y12, Y2, Y2

	VMOVDQU (R10)(AX*1), Y13
	VPSIGNB Y8, Y13, Y13
	VPMADDUBSW Y13, Y9, Y13
	VPMADDWD Y7, Y13, Y13
	VPADDD Y13, Y3, Y3

	ADDQ $32, AX
	CMPQ AX, CX
	JL loop4i8

	// Horizontal sums of the four accumulators into one vector [s0 s1 s2 s3].
	VPHADDD Y1, Y0, Y0
	VPHADDD Y3, Y2, Y2
	VPHADDD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VMOVDQU X0, (DX)
	VZEROUPPER
	RET

// float16 storage against float32 queries: F16C widens eight halves at a
// time and FMA accumulates; two accumulators per query hide FMA latency.

// func dotF16AVX2(x *uint16, q *float32, n int) float32
// n is a positive multiple of 16.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ AX, AX

loopf16:
	VCVTPH2PS (SI)(AX*2), Y2
	VCVTPH2PS 16(SI)(AX*2), Y3
	VFMADD231PS (DI)(AX*4), Y2, Y0
	VFMADD231PS 32(DI)(AX*4), Y3, Y1
	ADDQ $16, AX
	CMPQ AX, CX
	JL loopf16

	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VADDPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VADDPS X1, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dot4F16AVX2(x *uint16, q *float32, stride, n int, out *[4]float32)
// stride is in float32 elements; n is a positive multiple of 16.
TEXT ·dot4F16AVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ stride+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (DI)(BX*4), R8
	LEAQ (R8)(BX*4), R9
	LEAQ (R9)(BX*4), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX

loop4f16:
	VCVTPH2PS (SI)(AX*2), Y8
	VCVTPH2PS 16(SI)(AX*2), Y9
	VFMADD231PS (DI)(AX*4), Y8, Y0
	VFMADD231PS 32(DI)(AX*4), Y9, Y4
	VFMADD231PS (R8)(AX*4), Y8, Y1
	VFMADD231PS 32(R8)(AX*4), Y9, Y5
	VFMADD231PS (R9)(AX*4), Y8, Y2
	VFMADD231PS 32(R9)(AX*4), Y9, Y6
	VFMADD231PS (R10)(AX*4), Y8, Y3
	VFMADD231PS 32(R10)(AX*4), Y9, Y7
	ADDQ $16, AX
	CMPQ AX, CX
	JL loop4f16

	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	VHADDPS Y1, Y0, Y0
	VHADDPS Y3, Y2, Y2
	VHADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVUPS X0, (DX)
	VZEROUPPER
	RET
