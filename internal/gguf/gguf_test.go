package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDequantizeMatchesReference(t *testing.T) {
	f, err := Open(filepath.Join("testdata", "quants.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, typ := range []Type{TypeF32, TypeF16, TypeBF16, TypeQ8_0, TypeQ4_0, TypeQ4_1, TypeQ4_K, TypeQ6_K} {
		t.Run(typ.String(), func(t *testing.T) {
			q, ok := f.Tensor("q." + typ.String())
			if !ok {
				t.Fatalf("testdata lacks q.%s", typ)
			}
			if q.Type != typ {
				t.Fatalf("q.%s has type %s", typ, q.Type)
			}
			ref, _ := f.Tensor("ref." + typ.String())
			got, err := f.Float32(q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := f.Float32(ref)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q.Shape(), ref.Shape()) || len(got) != len(want) {
				t.Fatalf("shape %v (%d values), reference %v (%d)", q.Shape(), len(got), ref.Shape(), len(want))
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("element %d: %g, llama.cpp's gguf package gives %g", i, got[i], want[i])
				}
			}
		})
	}
	u, _ := f.Tensor("unsupported.Q5_K")
	_, err = f.Float32(u)
	if err == nil || !strings.Contains(err.Error(), "unsupported.Q5_K") || !strings.Contains(err.Error(), "Q5_K") {
		t.Errorf("dequantising Q5_K: got %v, want an error naming the tensor and type", err)
	}
}

func TestMetadataTypes(t *testing.T) {
	kvs := []kv{
		{"u8", uint8(7)}, {"i8", int8(-7)}, {"u16", uint16(700)}, {"i16", int16(-700)},
		{"u32", uint32(70000)}, {"i32", int32(-70000)}, {"f32", float32(1e-5)}, {"b", true},
		{"s", "héllo"}, {"u64", uint64(1 << 40)}, {"i64", int64(-1 << 40)}, {"f64", 0.25},
		{"as", []string{"a", "", "ç"}}, {"ai32", []int32{1, -2, 3}}, {"af32", []float32{0.5, -1}},
		{"ab", []bool{true, false}}, {"nested", []any{[]int32{1}, []string{"x"}}},
		{"general.alignment", uint32(64)},
	}
	data := encodeGGUF(kvs, []tensorSpec{
		{name: "a", dims: []uint64{3}, typ: TypeF32, data: f32Bytes([]float32{1, 2, 3})},
		{name: "b", dims: []uint64{2, 1}, typ: TypeF32, data: f32Bytes([]float32{4, 5})},
	})
	f, err := Parse(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"u8": uint8(7), "i8": int8(-7), "u16": uint16(700), "i16": int16(-700), "u32": uint32(70000),
		"i32": int32(-70000), "f32": float32(1e-5), "b": true, "s": "héllo", "u64": uint64(1 << 40),
		"i64": int64(-1 << 40), "f64": 0.25, "as": []string{"a", "", "ç"}, "ai32": []int32{1, -2, 3},
		"af32": []float32{0.5, -1}, "ab": []bool{true, false}, "nested": []any{[]int32{1}, []string{"x"}},
		"general.alignment": uint32(64),
	}
	if !reflect.DeepEqual(f.Metadata, want) {
		t.Errorf("metadata\n got %#v\nwant %#v", f.Metadata, want)
	}
	if len(f.Keys) != len(kvs) || f.Keys[0] != "u8" || f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("keys %v alignment %d data offset %d", f.Keys, f.Alignment, f.DataOffset)
	}
	if v, _ := f.Float("f32"); v != 1e-5 {
		t.Errorf("Float(f32) = %v, want 1e-05 exactly", v)
	}
	if v, ok := f.Uint("i8"); ok {
		t.Errorf("Uint of a negative value = %d, want not ok", v)
	}
	if v, ok := f.Ints("ai32"); !ok || !reflect.DeepEqual(v, []int64{1, -2, 3}) {
		t.Errorf("Ints = %v", v)
	}
	b, _ := f.Tensor("b")
	if !reflect.DeepEqual(b.Shape(), []int{1, 2}) || b.Offset != 64 {
		t.Errorf("tensor b: shape %v offset %d", b.Shape(), b.Offset)
	}
	if v, err := f.Float32(b); err != nil || !reflect.DeepEqual(v, []float32{4, 5}) {
		t.Errorf("tensor b: %v %v", v, err)
	}
}

// header builds the fixed part of a file: magic, version and counts.
func header(version uint32, tensors, kvs uint64) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b, magic)
	binary.LittleEndian.PutUint32(b[4:], version)
	binary.LittleEndian.PutUint64(b[8:], tensors)
	binary.LittleEndian.PutUint64(b[16:], kvs)
	return b
}

func TestCorruptFiles(t *testing.T) {
	one := func(name string, dims []uint64, typ Type, n int) tensorSpec {
		return tensorSpec{name: name, dims: dims, typ: typ, data: make([]byte, n)}
	}
	good := encodeGGUF([]kv{{"k", uint32(1)}}, []tensorSpec{one("w", []uint64{4}, TypeF32, 16)})
	if _, err := Parse(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("good file: %v", err)
	}
	// Locate fields of the good file to corrupt them.
	tensorOffsetAt := bytes.Index(good, []byte("w")) + 1 + 4 + 8 + 4
	withOffset := func(off uint64) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint64(b[tensorOffsetAt:], off)
		return b
	}
	bigArray := append(header(3, 0, 1), []byte{1, 0, 0, 0, 0, 0, 0, 0, 'a', 9, 0, 0, 0, 4, 0, 0, 0}...)
	bigArray = binary.LittleEndian.AppendUint64(bigArray, 1<<40)
	be := header(3, 0, 0)
	binary.BigEndian.PutUint32(be[4:], 3)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), "not a GGUF file"},
		{"version 1", header(1, 0, 0), "version 1"},
		{"big endian", be, "big-endian"},
		{"unknown version", header(9, 0, 0), "unknown GGUF version 9"},
		{"tensor count beyond file", header(3, 1<<50, 0), "tensor count"},
		{"truncated metadata", encodeGGUF([]kv{{"key", "a string value"}}, nil)[:40], `metadata "key"`},
		{"array count beyond file", bigArray, "array element count"},
		{"truncated tensor data", good[:len(good)-24], `tensor "w"`},
		{"misaligned offset", withOffset(4), "alignment"},
		{"offset past end", withOffset(1 << 20), "run past the end"},
		{"duplicate key", encodeGGUF([]kv{{"k", uint8(1)}, {"k", uint8(2)}}, nil), `"k" appears twice`},
		{"bad alignment", encodeGGUF([]kv{{"general.alignment", uint32(24)}}, nil), "power of two"},
		{"unknown value type", encodeGGUF([]kv{{"k", uint8(1)}}, nil)[:24+8+1+0], "metadata"},
		{"too many dims", encodeGGUF(nil, []tensorSpec{one("w", []uint64{1, 1, 1, 1, 1}, TypeF32, 4)}), "5 dimensions"},
		{"zero dim", encodeGGUF(nil, []tensorSpec{one("w", []uint64{0}, TypeF32, 0)}), "dimension 0 is 0"},
		{"row not whole blocks", encodeGGUF(nil, []tensorSpec{one("w", []uint64{16}, TypeQ8_0, 34)}), "block size 32"},
		{"duplicate tensor", encodeGGUF(nil, []tensorSpec{one("w", []uint64{1}, TypeF32, 4), one("w", []uint64{1}, TypeF32, 4)}), `"w" appears twice`},
	}
	for _, c := range cases {
		_, err := Parse(bytes.NewReader(c.data), int64(len(c.data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	// Overlap: two tensors whose descriptors point at the same bytes.
	ov := encodeGGUF(nil, []tensorSpec{one("a", []uint64{16}, TypeF32, 64), one("b", []uint64{8}, TypeF32, 32)})
	i := bytes.LastIndex(ov[:100], []byte("b")) + 1 + 4 + 8 + 4
	binary.LittleEndian.PutUint64(ov[i:], 32)
	if _, err := Parse(bytes.NewReader(ov), int64(len(ov))); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlapping tensors: %v", err)
	}
	// Errors from Open name the file.
	path := filepath.Join(t.TempDir(), "bad.gguf")
	os.WriteFile(path, good[:len(good)-24], 0o644)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a truncated file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "quants.gguf"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed[:4096])
	f.Add(encodeGGUF([]kv{{"a", []string{"x", "y"}}, {"b", float32(1)}, {"n", []any{[]int32{1}}}},
		[]tensorSpec{{name: "w", dims: []uint64{32}, typ: TypeQ8_0, data: make([]byte, 34)}}))
	f.Add(encodeGGUF(nil, []tensorSpec{{name: "k", dims: []uint64{256}, typ: TypeQ4_K, data: make([]byte, 144)},
		{name: "s", dims: []uint64{256}, typ: TypeQ6_K, data: make([]byte, 210)}}))
	f.Add(header(3, 1, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, ti := range g.Tensors {
			if ti.Bytes > 1<<20 {
				continue
			}
			if vals, err := g.Float32(ti); err == nil && int64(len(vals)) != ti.Elements() {
				t.Fatalf("tensor %q: %d values for %d elements", ti.Name, len(vals), ti.Elements())
			}
		}
	})
}
