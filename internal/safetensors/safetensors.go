// Package safetensors reads and writes checkpoint files in the safetensors
// format: an 8-byte little-endian header length, a JSON header mapping each
// tensor name to its dtype, shape and byte range, then the raw little-endian
// tensor data. Directories hold either one model.safetensors or shards listed
// by model.safetensors.index.json, as Hugging Face writes them.
package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DType names an element type as spelled in safetensors headers.
type DType string

// Element types this package reads and writes.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	BOOL DType = "BOOL"
	U16  DType = "U16"
	U32  DType = "U32"
	U64  DType = "U64"
)

// Size returns the number of bytes of one element, or 0 for a dtype this
// package does not handle.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case I8, U8, BOOL:
		return 1
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == F32 || d == F16 || d == BF16 || d == F64
}

// Tensor is one named array of a checkpoint. Data holds the elements in
// little-endian byte order, row-major; it may alias a buffer shared with
// other tensors of the same file, so callers must not append to it.
type Tensor struct {
	DType DType
	Shape []int
	Data  []byte
}

// TensorInfo describes a tensor of a file without its data. DataOffsets is
// the byte range relative to the start of the data section.
type TensorInfo struct {
	DType       DType
	Shape       []int
	DataOffsets [2]int64
}

// NumElements returns the product of the shape (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// checkedElements multiplies the shape, refusing negative dimensions and
// products that would overflow the byte size of the tensor.
func checkedElements(shape []int, elemSize int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt64/int64(elemSize)/int64(d) {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

// Float32 returns the elements converted to float32. F64 values are
// rounded to the nearest float32.
func (t *Tensor) Float32() ([]float32, error) {
	if err := t.checkSize(); err != nil {
		return nil, err
	}
	d := t.Data
	switch t.DType {
	case F32:
		out := make([]float32, len(d)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
		return out, nil
	case BF16:
		out := make([]float32, len(d)/2)
		for i := range out {
			out[i] = BF16ToFloat32(binary.LittleEndian.Uint16(d[2*i:]))
		}
		return out, nil
	case F16:
		out := make([]float32, len(d)/2)
		for i := range out {
			out[i] = F16ToFloat32(binary.LittleEndian.Uint16(d[2*i:]))
		}
		return out, nil
	case F64:
		out := make([]float32, len(d)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s is not a floating-point type", t.DType)
}

// Int64 returns the elements converted to int64. U64 values above
// math.MaxInt64 are an error rather than wrapping around.
func (t *Tensor) Int64() ([]int64, error) {
	if err := t.checkSize(); err != nil {
		return nil, err
	}
	d := t.Data
	n := 0
	if s := t.DType.Size(); s > 0 {
		n = len(d) / s
	}
	out := make([]int64, n)
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(d[8*i:]))
		}
	case U64:
		for i := range out {
			v := binary.LittleEndian.Uint64(d[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("element %d of a U64 tensor (%d) does not fit in int64", i, v)
			}
			out[i] = int64(v)
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(d[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(d[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(d[i]))
		}
	case U8, BOOL:
		for i := range out {
			out[i] = int64(d[i])
		}
	default:
		return nil, fmt.Errorf("dtype %s is not an integer type", t.DType)
	}
	return out, nil
}

// checkSize guards the conversions against tensors built by hand whose data
// does not match their shape.
func (t *Tensor) checkSize() error {
	size := t.DType.Size()
	if size == 0 {
		return fmt.Errorf("dtype %q is not supported", t.DType)
	}
	n, err := checkedElements(t.Shape, size)
	if err != nil {
		return err
	}
	if int64(len(t.Data)) != n*int64(size) {
		return fmt.Errorf("%s tensor of shape %v needs %d bytes, has %d", t.DType, t.Shape, n*int64(size), len(t.Data))
	}
	return nil
}

// FromFloat32 encodes data as a tensor of the given floating-point dtype
// (F32, BF16 or F16, rounding to nearest even; F64 exactly).
func FromFloat32(shape []int, data []float32, dtype DType) (*Tensor, error) {
	if NumElements(shape) != len(data) {
		return nil, fmt.Errorf("shape %v holds %d elements, got %d values", shape, NumElements(shape), len(data))
	}
	shape = append([]int{}, shape...)
	switch dtype {
	case F32:
		b := make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return &Tensor{DType: F32, Shape: shape, Data: b}, nil
	case BF16:
		b := make([]byte, 2*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint16(b[2*i:], Float32ToBF16(v))
		}
		return &Tensor{DType: BF16, Shape: shape, Data: b}, nil
	case F16:
		b := make([]byte, 2*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint16(b[2*i:], Float32ToF16(v))
		}
		return &Tensor{DType: F16, Shape: shape, Data: b}, nil
	case F64:
		b := make([]byte, 8*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(float64(v)))
		}
		return &Tensor{DType: F64, Shape: shape, Data: b}, nil
	}
	return nil, fmt.Errorf("cannot encode float32 values as dtype %q", dtype)
}

// FromInt64 encodes data as an I64 tensor. It panics if the shape does not
// hold len(data) elements, since that is a programming error.
func FromInt64(shape []int, data []int64) *Tensor {
	if NumElements(shape) != len(data) {
		panic(fmt.Sprintf("safetensors.FromInt64: shape %v holds %d elements, got %d values", shape, NumElements(shape), len(data)))
	}
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return &Tensor{DType: I64, Shape: append([]int{}, shape...), Data: b}
}

// BF16ToFloat32 widens a bfloat16 bit pattern; every value is exact.
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBF16 rounds to the nearest bfloat16, ties to even. NaNs stay
// NaN (quiet) rather than rounding into infinity.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToFloat32 widens an IEEE half-precision bit pattern; every value,
// subnormals included, is exact.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		// Subnormal: mant × 2⁻²⁴, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// Float32ToF16 rounds to the nearest IEEE half, ties to even, producing
// subnormals for tiny values, infinity on overflow and a quiet NaN for NaN.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // below half the smallest subnormal
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		r := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++ // may carry into the smallest normal, which is the right encoding
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into infinity, which is the right encoding
	}
	return sign | uint16(r)
}
