package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// The tests build GGUF files with this small encoder, written from the
// format description independently of the parser.

type kv struct {
	key string
	val any
}

type tensorSpec struct {
	name string
	dims []uint64 // ggml order, innermost first
	typ  Type
	data []byte
}

func putString(b *bytes.Buffer, s string) {
	binary.Write(b, binary.LittleEndian, uint64(len(s)))
	b.WriteString(s)
}

func valueType(v any) uint32 {
	switch v.(type) {
	case uint8:
		return valUint8
	case int8:
		return valInt8
	case uint16:
		return valUint16
	case int16:
		return valInt16
	case uint32:
		return valUint32
	case int32:
		return valInt32
	case float32:
		return valFloat32
	case bool:
		return valBool
	case string:
		return valString
	case uint64:
		return valUint64
	case int64:
		return valInt64
	case float64:
		return valFloat64
	case []string, []int32, []float32, []uint32, []int64, []bool, []any:
		return valArray
	}
	panic(fmt.Sprintf("no GGUF type for %T", v))
}

func putValue(b *bytes.Buffer, v any) {
	le := binary.LittleEndian
	switch x := v.(type) {
	case string:
		putString(b, x)
	case bool:
		if x {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	case []string:
		binary.Write(b, le, uint32(valString))
		binary.Write(b, le, uint64(len(x)))
		for _, s := range x {
			putString(b, s)
		}
	case []any:
		binary.Write(b, le, uint32(valArray))
		binary.Write(b, le, uint64(len(x)))
		for _, e := range x {
			putValue(b, e)
		}
	case []int32, []float32, []uint32, []int64, []bool:
		var et uint32
		var n int
		switch y := x.(type) {
		case []int32:
			et, n = valInt32, len(y)
		case []float32:
			et, n = valFloat32, len(y)
		case []uint32:
			et, n = valUint32, len(y)
		case []int64:
			et, n = valInt64, len(y)
		case []bool:
			et, n = valBool, len(y)
		}
		binary.Write(b, le, et)
		binary.Write(b, le, uint64(n))
		binary.Write(b, le, x)
	default:
		binary.Write(b, le, x)
	}
}

// encodeGGUF returns a version-3 GGUF file (alignment from general.alignment
// if present, else 32).
func encodeGGUF(kvs []kv, tensors []tensorSpec) []byte {
	le := binary.LittleEndian
	align := uint64(DefaultAlignment)
	var b bytes.Buffer
	binary.Write(&b, le, uint32(magic))
	binary.Write(&b, le, uint32(3))
	binary.Write(&b, le, uint64(len(tensors)))
	binary.Write(&b, le, uint64(len(kvs)))
	for _, e := range kvs {
		if e.key == "general.alignment" {
			align = uint64(e.val.(uint32))
		}
		putString(&b, e.key)
		binary.Write(&b, le, valueType(e.val))
		putValue(&b, e.val)
	}
	var off uint64
	offsets := make([]uint64, len(tensors))
	for i, t := range tensors {
		offsets[i] = off
		off += (uint64(len(t.data)) + align - 1) / align * align
	}
	for i, t := range tensors {
		putString(&b, t.name)
		binary.Write(&b, le, uint32(len(t.dims)))
		for _, d := range t.dims {
			binary.Write(&b, le, d)
		}
		binary.Write(&b, le, uint32(t.typ))
		binary.Write(&b, le, offsets[i])
	}
	for uint64(b.Len())%align != 0 {
		b.WriteByte(0)
	}
	for _, t := range tensors {
		b.Write(t.data)
		for uint64(b.Len())%align != 0 {
			b.WriteByte(0)
		}
	}
	return b.Bytes()
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
