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

// One step t of a group of groupsT: L = lt row t, then T0..T3 += (row j+q
// of r)[t] * L for the four rows q.
#define QSTEP(loff, ltoff) \
	VMOVUPS ltoff(BX), Y8; \
	VBROADCASTSS loff(AX), Y9; \
	VMULPS Y9, Y8, Y10; \
	VADDPS Y10, Y4, Y4; \
	VBROADCASTSS loff(AX)(R8*1), Y9; \
	VMULPS Y9, Y8, Y11; \
	VADDPS Y11, Y5, Y5; \
	VBROADCASTSS loff(AX)(R8*2), Y9; \
	VMULPS Y9, Y8, Y12; \
	VADDPS Y12, Y6, Y6; \
	VBROADCASTSS loff(AX)(R9*1), Y9; \
	VMULPS Y9, Y8, Y13; \
	VADDPS Y13, Y7, Y7

// The same for a single row.
#define SSTEP(loff, ltoff) \
	VMOVUPS ltoff(BX), Y8; \
	VBROADCASTSS loff(AX), Y9; \
	VMULPS Y9, Y8, Y10; \
	VADDPS Y10, Y4, Y4

// func groupsT(r *float32, rStride int, lt *float32, ot *float32, n, groups int)
TEXT ·groupsT(SB), NOSPLIT, $0-48
	MOVQ n+32(FP), R11
	MOVQ groups+40(FP), R12
	TESTQ R11, R11
	JZ   tdone
	TESTQ R12, R12
	JZ   tdone
	MOVQ r+0(FP), SI
	MOVQ rStride+8(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ ot+24(FP), DX

quad:
	CMPQ R11, $4
	JLT  single
	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	MOVQ SI, AX
	MOVQ lt+16(FP), BX
	MOVQ R12, R13

qgroup:
	VMOVUPS (BX), Y8
	VBROADCASTSS (AX), Y9
	VMULPS Y9, Y8, Y4
	VBROADCASTSS (AX)(R8*1), Y9
	VMULPS Y9, Y8, Y5
	VBROADCASTSS (AX)(R8*2), Y9
	VMULPS Y9, Y8, Y6
	VBROADCASTSS (AX)(R9*1), Y9
	VMULPS Y9, Y8, Y7
	QSTEP(4, 32)
	QSTEP(8, 64)
	QSTEP(12, 96)
	QSTEP(16, 128)
	QSTEP(20, 160)
	QSTEP(24, 192)
	QSTEP(28, 224)
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	ADDQ $32, AX
	ADDQ $256, BX
	DECQ R13
	JNZ  qgroup

	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	LEAQ (SI)(R8*4), SI
	ADDQ $128, DX
	SUBQ $4, R11
	JMP  quad

single:
	TESTQ R11, R11
	JZ   tdone
	VMOVUPS (DX), Y0
	MOVQ SI, AX
	MOVQ lt+16(FP), BX
	MOVQ R12, R13

sgroup:
	VMOVUPS (BX), Y8
	VBROADCASTSS (AX), Y9
	VMULPS Y9, Y8, Y4
	SSTEP(4, 32)
	SSTEP(8, 64)
	SSTEP(12, 96)
	SSTEP(16, 128)
	SSTEP(20, 160)
	SSTEP(24, 192)
	SSTEP(28, 224)
	VADDPS Y4, Y0, Y0
	ADDQ $32, AX
	ADDQ $256, BX
	DECQ R13
	JNZ  sgroup

	VMOVUPS Y0, (DX)
	ADDQ R8, SI
	ADDQ $32, DX
	DECQ R11
	JMP  single

tdone:
	VZEROUPPER
	RET
