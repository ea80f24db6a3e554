#include "textflag.h"

// One step t of a group: T0..T3 += l[t] * rt row t, 32 columns. The product
// is rounded before it is added, as in the backend's scalar loop (no FMA).
#define STEP(loff, m0, m1, m2, m3) \
	VBROADCASTSS loff(AX), Y8; \
	VMULPS m0, Y8, Y9; \
	VADDPS Y9, Y4, Y4; \
	VMULPS m1, Y8, Y10; \
	VADDPS Y10, Y5, Y5; \
	VMULPS m2, Y8, Y11; \
	VADDPS Y11, Y6, Y6; \
	VMULPS m3, Y8, Y12; \
	VADDPS Y12, Y7, Y7

// func groups32(l *float32, lStride int, rt *float32, rtStride int, out *float32, outStride int, rows, groups, chunks int)
TEXT ·groups32(SB), NOSPLIT, $0-72
	MOVQ rows+48(FP), R11
	MOVQ groups+56(FP), R13
	MOVQ chunks+64(FP), R12
	TESTQ R11, R11
	JZ   done
	TESTQ R13, R13
	JZ   done
	TESTQ R12, R12
	JZ   done
	MOVQ l+0(FP), SI
	MOVQ lStride+8(FP), R8
	SHLQ $2, R8
	MOVQ rtStride+24(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	MOVQ out+32(FP), DX

row:
	XORQ CX, CX
	MOVQ chunks+64(FP), R12

chunk:
	VMOVUPS (DX)(CX*1), Y0
	VMOVUPS 32(DX)(CX*1), Y1
	VMOVUPS 64(DX)(CX*1), Y2
	VMOVUPS 96(DX)(CX*1), Y3
	MOVQ rt+16(FP), BX
	ADDQ CX, BX
	MOVQ SI, AX
	MOVQ groups+56(FP), R13

group:
	LEAQ (BX)(R9*4), DI
	VBROADCASTSS (AX), Y8
	VMULPS (BX), Y8, Y4
	VMULPS 32(BX), Y8, Y5
	VMULPS 64(BX), Y8, Y6
	VMULPS 96(BX), Y8, Y7
	STEP(4, (BX)(R9*1), 32(BX)(R9*1), 64(BX)(R9*1), 96(BX)(R9*1))
	STEP(8, (BX)(R9*2), 32(BX)(R9*2), 64(BX)(R9*2), 96(BX)(R9*2))
	STEP(12, (BX)(R10*1), 32(BX)(R10*1), 64(BX)(R10*1), 96(BX)(R10*1))
	STEP(16, (DI), 32(DI), 64(DI), 96(DI))
	STEP(20, (DI)(R9*1), 32(DI)(R9*1), 64(DI)(R9*1), 96(DI)(R9*1))
	STEP(24, (DI)(R9*2), 32(DI)(R9*2), 64(DI)(R9*2), 96(DI)(R9*2))
	STEP(28, (DI)(R10*1), 32(DI)(R10*1), 64(DI)(R10*1), 96(DI)(R10*1))
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	ADDQ $32, AX
	LEAQ (BX)(R9*8), BX
	DECQ R13
	JNZ  group

	VMOVUPS Y0, (DX)(CX*1)
	VMOVUPS Y1, 32(DX)(CX*1)
	VMOVUPS Y2, 64(DX)(CX*1)
	VMOVUPS Y3, 96(DX)(CX*1)
	ADDQ $128, CX
	DECQ R12
	JNZ  chunk

	ADDQ R8, SI
	MOVQ outStride+40(FP), R12
	SHLQ $2, R12
	ADDQ R12, DX
	DECQ R11
	JNZ  row

done:
	VZEROUPPER
	RET
