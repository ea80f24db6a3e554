package vector

import (
	"math"
	"unsafe"

	"github.com/x448/float16"
)

// The index files are little-endian and so is every machine this package
// builds for (amd64, arm64), so the mapped bytes are viewed in place.

func bytesAsInt8(b []byte) []int8 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}

func bytesAsUint16(b []byte) []uint16 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

func bytesAsFloat32(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func float32sAsBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

func int8sAsBytes(v []int8) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v))
}

func uint16sAsBytes(v []uint16) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 2*len(v))
}

// halfTable decodes every float16 bit pattern; the pure-Go kernels use it
// because a table lookup is cheaper than unpacking the bits.
var halfTable = func() []float32 {
	t := make([]float32, 1<<16)
	for i := range t {
		t[i] = float16.Frombits(uint16(i)).Float32()
	}
	return t
}()

func halfToFloat(h uint16) float32 { return halfTable[h] }

// floatToHalf rounds to the nearest float16 (ties to even).
func floatToHalf(f float32) uint16 { return float16.Fromfloat32(f).Bits() }

// quantizeInt8 writes round(x/s) into dst with s = max|x|/127, so that the
// largest component maps to ±127, and returns s. The range is symmetric
// (-128 is never used), which the AVX2 kernel relies on: |a|·b pairs then
// fit in int16 without saturating. A zero vector gets scale 0.
func quantizeInt8(x []float32, dst []int8) float32 {
	var m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	if m == 0 {
		clear(dst)
		return 0
	}
	s := m / 127
	inv := 1 / s
	for i, v := range x {
		q := math.RoundToEven(float64(v * inv))
		q = max(-127, min(127, q))
		dst[i] = int8(q)
	}
	return s
}

// finite reports whether every component is a finite number.
func finite(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}
