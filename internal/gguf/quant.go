package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ssp-project/ssp/internal/safetensors"
)

// Type is a ggml tensor element type (enum ggml_type).
type Type uint32

// ggml types. Numbers are fixed by the file format; gaps are types ggml
// has removed.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
)

var typeNames = map[Type]string{
	TypeF32: "F32", TypeF16: "F16", TypeQ4_0: "Q4_0", TypeQ4_1: "Q4_1", TypeQ5_0: "Q5_0", TypeQ5_1: "Q5_1",
	TypeQ8_0: "Q8_0", TypeQ8_1: "Q8_1", TypeQ2_K: "Q2_K", TypeQ3_K: "Q3_K", TypeQ4_K: "Q4_K", TypeQ5_K: "Q5_K",
	TypeQ6_K: "Q6_K", TypeQ8_K: "Q8_K", TypeIQ2_XXS: "IQ2_XXS", TypeIQ2_XS: "IQ2_XS", TypeIQ3_XXS: "IQ3_XXS",
	TypeIQ1_S: "IQ1_S", TypeIQ4_NL: "IQ4_NL", TypeIQ3_S: "IQ3_S", TypeIQ2_S: "IQ2_S", TypeIQ4_XS: "IQ4_XS",
	TypeI8: "I8", TypeI16: "I16", TypeI32: "I32", TypeI64: "I64", TypeF64: "F64", TypeIQ1_M: "IQ1_M",
	TypeBF16: "BF16", TypeTQ1_0: "TQ1_0", TypeTQ2_0: "TQ2_0", TypeMXFP4: "MXFP4",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// qkK is QK_K, the super-block size of the k-quants.
const qkK = 256

// blockLayout returns the elements per block and bytes per block of the
// types whose layout is known (ggml's type_traits), or 0, 0.
func (t Type) blockLayout() (elems, bytes int) {
	switch t {
	case TypeF32, TypeI32:
		return 1, 4
	case TypeF16, TypeBF16, TypeI16:
		return 1, 2
	case TypeF64, TypeI64:
		return 1, 8
	case TypeI8:
		return 1, 1
	case TypeQ4_0:
		return 32, 2 + 16
	case TypeQ4_1:
		return 32, 2 + 2 + 16
	case TypeQ5_0:
		return 32, 2 + 4 + 16
	case TypeQ5_1:
		return 32, 2 + 2 + 4 + 16
	case TypeQ8_0:
		return 32, 2 + 32
	case TypeQ8_1:
		return 32, 4 + 4 + 32
	case TypeQ2_K:
		return qkK, qkK/16 + qkK/4 + 2 + 2
	case TypeQ3_K:
		return qkK, qkK/8 + qkK/4 + 12 + 2
	case TypeQ4_K:
		return qkK, 2 + 2 + 12 + qkK/2
	case TypeQ5_K:
		return qkK, 2 + 2 + 12 + qkK/8 + qkK/2
	case TypeQ6_K:
		return qkK, qkK/2 + qkK/4 + qkK/16 + 2
	case TypeQ8_K:
		return qkK, 4 + qkK + qkK/16*2
	}
	return 0, 0
}

// Dequantize converts n elements of raw ggml data of type t to float32,
// with the arithmetic of ggml's reference dequantize_row_* functions.
func Dequantize(t Type, raw []byte, n int64) ([]float32, error) {
	bs, ts := t.blockLayout()
	if bs == 0 {
		return nil, fmt.Errorf("ggml type %s is not supported", t)
	}
	if n%int64(bs) != 0 || int64(len(raw)) != n/int64(bs)*int64(ts) {
		return nil, fmt.Errorf("%s data of %d bytes does not hold %d elements", t, len(raw), n)
	}
	out := make([]float32, n)
	le := binary.LittleEndian
	f16 := safetensors.F16ToFloat32
	switch t {
	case TypeF32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case TypeF16:
		for i := range out {
			out[i] = f16(le.Uint16(raw[2*i:]))
		}
	case TypeBF16:
		for i := range out {
			out[i] = safetensors.BF16ToFloat32(le.Uint16(raw[2*i:]))
		}
	case TypeF64:
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
	case TypeQ8_0:
		for b := 0; b < len(out)/32; b++ {
			blk := raw[b*ts:]
			d := f16(le.Uint16(blk))
			y := out[b*32 : b*32+32]
			for j := range y {
				y[j] = float32(int8(blk[2+j])) * d
			}
		}
	case TypeQ4_0:
		for b := 0; b < len(out)/32; b++ {
			blk := raw[b*ts:]
			d := f16(le.Uint16(blk))
			qs := blk[2:18]
			y := out[b*32 : b*32+32]
			for j := 0; j < 16; j++ {
				y[j] = float32(int(qs[j]&0x0f)-8) * d
				y[j+16] = float32(int(qs[j]>>4)-8) * d
			}
		}
	case TypeQ4_1:
		for b := 0; b < len(out)/32; b++ {
			blk := raw[b*ts:]
			d := f16(le.Uint16(blk))
			m := f16(le.Uint16(blk[2:]))
			qs := blk[4:20]
			y := out[b*32 : b*32+32]
			for j := 0; j < 16; j++ {
				// float32() keeps the product rounded before the add, as ggml does.
				y[j] = float32(float32(qs[j]&0x0f)*d) + m
				y[j+16] = float32(float32(qs[j]>>4)*d) + m
			}
		}
	case TypeQ4_K:
		for b := 0; b < len(out)/qkK; b++ {
			dequantQ4K(raw[b*ts:(b+1)*ts], out[b*qkK:(b+1)*qkK])
		}
	case TypeQ6_K:
		for b := 0; b < len(out)/qkK; b++ {
			dequantQ6K(raw[b*ts:(b+1)*ts], out[b*qkK:(b+1)*qkK])
		}
	default:
		return nil, fmt.Errorf("ggml type %s is not supported (supported: F32, F16, BF16, F64, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)", t)
	}
	return out, nil
}

// scaleMinK4 unpacks the j-th 6-bit scale and min of a Q4_K block: the
// first four pairs sit in the low six bits of bytes 0-7, the last four are
// split between the nibbles of bytes 8-11 and the top two bits of 0-7.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0x0f) | (q[j-4]>>6)<<4, (q[j+4] >> 4) | (q[j]>>6)<<4
}

// dequantQ4K decodes one block_q4_K: d, dmin (f16), scales[12], qs[128].
// Each 64-element group uses two sub-blocks: low nibbles then high nibbles.
func dequantQ4K(blk []byte, y []float32) {
	d := safetensors.F16ToFloat32(binary.LittleEndian.Uint16(blk))
	dmin := safetensors.F16ToFloat32(binary.LittleEndian.Uint16(blk[2:]))
	scales := blk[4:16]
	q := blk[16:]
	for j, is := 0, 0; j < qkK; j, is = j+64, is+2 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := 0; l < 32; l++ {
			y[j+l] = float32(d1*float32(q[l]&0x0f)) - m1
			y[j+32+l] = float32(d2*float32(q[l]>>4)) - m2
		}
		q = q[32:]
	}
}

// dequantQ6K decodes one block_q6_K: ql[128] (low four bits), qh[64] (high
// two bits), scales[16] (int8), d (f16). Each half of 128 elements
// interleaves four runs of 32 across the nibbles and bit pairs.
func dequantQ6K(blk []byte, y []float32) {
	ql := blk[0:128]
	qh := blk[128:192]
	sc := blk[192:208]
	d := safetensors.F16ToFloat32(binary.LittleEndian.Uint16(blk[208:]))
	for n := 0; n < qkK; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int8(ql[l]&0x0f|(qh[l]>>0&3)<<4) - 32
			q2 := int8(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
			q3 := int8(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int8(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			y[n+l] = float32(d*float32(int8(sc[is]))) * float32(q1)
			y[n+l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			y[n+l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			y[n+l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}
