package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/x448/float16"

	"github.com/ssp-project/ssp/internal/fixtures"
)

func TestRoundTripAllDTypes(t *testing.T) {
	tensors := map[string]*Tensor{}
	floats := []float32{0, -0.0, 1, -2.5, 3.140625, 65504, 1e-7, float32(math.Inf(-1))}
	for _, dt := range []DType{F32, F16, BF16, F64} {
		ts, err := FromFloat32([]int{2, 4}, floats, dt)
		if err != nil {
			t.Fatal(err)
		}
		tensors["f."+string(dt)] = ts
	}
	ints := []int64{0, 1, -1, 127, -128, 42}
	tensors["i.I64"] = FromInt64([]int{3, 2}, ints)
	for _, dt := range []DType{I32, I16, I8} {
		b := make([]byte, dt.Size()*len(ints))
		for i, v := range ints {
			switch dt.Size() {
			case 4:
				binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
			case 2:
				binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(v)))
			case 1:
				b[i] = byte(int8(v))
			}
		}
		tensors["i."+string(dt)] = &Tensor{DType: dt, Shape: []int{6}, Data: b}
	}
	tensors["u.U8"] = &Tensor{DType: U8, Shape: []int{3}, Data: []byte{0, 7, 255}}
	tensors["b.BOOL"] = &Tensor{DType: BOOL, Shape: []int{2}, Data: []byte{1, 0}}
	tensors["scalar"] = FromInt64([]int{}, []int64{-9})
	tensors["empty"] = &Tensor{DType: F32, Shape: []int{0, 3}, Data: []byte{}}

	path := filepath.Join(t.TempDir(), "all.safetensors")
	meta := map[string]string{"format": "pt", "note": "x"}
	if err := WriteFile(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(tensors) {
		t.Fatalf("read %d tensors, wrote %d", len(got), len(tensors))
	}
	for name, want := range tensors {
		g := got[name]
		if g == nil || g.DType != want.DType || !reflect.DeepEqual(g.Shape, want.Shape) || !bytes.Equal(g.Data, want.Data) {
			t.Errorf("%s: got %+v, want %+v", name, g, want)
		}
	}
	for _, dt := range []DType{F32, F64} {
		f, err := got["f."+string(dt)].Float32()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f, floats) {
			t.Errorf("%s: got %v, want %v", dt, f, floats)
		}
	}
	for _, dt := range []DType{I64, I32, I16, I8} {
		v, err := got["i."+string(dt)].Int64()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, ints) {
			t.Errorf("%s: got %v, want %v", dt, v, ints)
		}
	}
	if v, _ := got["u.U8"].Int64(); !reflect.DeepEqual(v, []int64{0, 7, 255}) {
		t.Errorf("U8: got %v", v)
	}
	if v, _ := got["scalar"].Int64(); !reflect.DeepEqual(v, []int64{-9}) {
		t.Errorf("scalar: got %v", v)
	}
	if _, err := got["i.I64"].Float32(); err == nil {
		t.Error("Float32 of an I64 tensor: want an error")
	}
	if _, err := got["f.F32"].Int64(); err == nil {
		t.Error("Int64 of an F32 tensor: want an error")
	}

	infos, gotMeta, err := ReadHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotMeta, meta) {
		t.Errorf("metadata %v, want %v", gotMeta, meta)
	}
	// Wider dtypes come first, so every tensor is aligned to its element size.
	for name, ti := range infos {
		if ti.DataOffsets[0]%int64(ti.DType.Size()) != 0 {
			t.Errorf("%s (%s) starts at unaligned offset %d", name, ti.DType, ti.DataOffsets[0])
		}
	}
	raw, _ := os.ReadFile(path)
	if n := binary.LittleEndian.Uint64(raw); n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestFloat16MatchesReference(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		want := float16.Frombits(uint16(h)).Float32()
		got := F16ToFloat32(uint16(h))
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("F16ToFloat32(%#04x) = %v, want %v", h, got, want)
		}
		// Every half is exactly representable, so the round trip is the identity
		// (NaN payloads are preserved too, with the quiet bit set).
		back := Float32ToF16(got)
		if got == got && back != uint16(h) {
			t.Fatalf("Float32ToF16(F16ToFloat32(%#04x)) = %#04x", h, back)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		bits := r.Uint32()
		if i%2 == 0 { // concentrate on the half range, subnormals included
			bits = bits&0x807fffff | uint32(100+r.IntN(45))<<23
		}
		f := math.Float32frombits(bits)
		if f != f {
			continue
		}
		want := float16.Fromfloat32(f).Bits()
		if got := Float32ToF16(f); got != want {
			t.Fatalf("Float32ToF16(%g [%#08x]) = %#04x, want %#04x", f, bits, got, want)
		}
	}
}

func TestConversionEdgeCases(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct {
		name string
		in   float32
		bf16 uint16
		f16  uint16
	}{
		{"zero", 0, 0x0000, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000, 0x8000},
		{"one", 1, 0x3f80, 0x3c00},
		{"inf", inf, 0x7f80, 0x7c00},
		{"-inf", -inf, 0xff80, 0xfc00},
		{"f16 max", 65504, 0x4780, 0x7bff},
		{"f16 overflow rounds to inf", 65520, 0x4780, 0x7c00},
		{"f16 just below overflow tie", 65519.996, 0x4780, 0x7bff},
		{"smallest f16 subnormal", float32(math.Ldexp(1, -24)), 0x3380, 0x0001},
		{"half smallest subnormal ties to zero", float32(math.Ldexp(1, -25)), 0x3300, 0x0000},
		{"just above half smallest subnormal", math.Float32frombits(0x33000001), 0x3300, 0x0001},
		{"largest f16 subnormal", float32(math.Ldexp(1023, -24)), 0x3880, 0x03ff},
		{"subnormal rounds up to normal", float32(math.Ldexp(2047, -25)), 0x3880, 0x0400},
		// 1 + 2^-8 is a tie between bf16 1.0 (even) and 1+2^-7: stays 1.0.
		{"bf16 tie to even down", 1 + 1.0/256, 0x3f80, 0x3c04},
		// 1 + 3·2^-8 is a tie between 1+2^-7 (odd) and 1+2^-6: goes up.
		{"bf16 tie to even up", 1 + 3.0/256, 0x3f82, 0x3c0c},
		{"bf16 above tie", math.Float32frombits(0x3f808001), 0x3f81, 0x3c04},
		{"f16 tie to even down", 1 + 1.0/2048, 0x3f80, 0x3c00},
		{"f16 tie to even up", 1 + 3.0/2048, 0x3f80, 0x3c02},
		{"bf16 overflow to inf", math.Float32frombits(0x7f7fffff), 0x7f80, 0x7c00},
		{"float32 subnormal", math.Float32frombits(0x00000001), 0x0000, 0x0000},
	}
	for _, c := range cases {
		if got := Float32ToBF16(c.in); got != c.bf16 {
			t.Errorf("%s: Float32ToBF16(%g) = %#04x, want %#04x", c.name, c.in, got, c.bf16)
		}
		if got := Float32ToF16(c.in); got != c.f16 {
			t.Errorf("%s: Float32ToF16(%g) = %#04x, want %#04x", c.name, c.in, got, c.f16)
		}
	}
	for _, f := range []float32{nan, -nan, math.Float32frombits(0x7f800001), math.Float32frombits(0xffc00001)} {
		if b := BF16ToFloat32(Float32ToBF16(f)); b == b {
			t.Errorf("bf16 of NaN %#08x is not NaN: %#04x", math.Float32bits(f), Float32ToBF16(f))
		}
		if h := F16ToFloat32(Float32ToF16(f)); h == h {
			t.Errorf("f16 of NaN %#08x is not NaN: %#04x", math.Float32bits(f), Float32ToF16(f))
		}
	}
	if got := BF16ToFloat32(0x0001); got != math.Float32frombits(0x00010000) {
		t.Errorf("bf16 subnormal widened to %g", got)
	}
	if got := F16ToFloat32(0x8001); got != -float32(math.Ldexp(1, -24)) {
		t.Errorf("negative f16 subnormal widened to %g", got)
	}
}

func TestFromFloat32Errors(t *testing.T) {
	if _, err := FromFloat32([]int{2, 2}, []float32{1, 2, 3}, F32); err == nil {
		t.Error("shape/length mismatch: want an error")
	}
	if _, err := FromFloat32([]int{1}, []float32{1}, I32); err == nil {
		t.Error("integer dtype: want an error")
	}
	bad := map[string]*Tensor{"w": {DType: F32, Shape: []int{3}, Data: make([]byte, 8)}}
	err := WriteFile(filepath.Join(t.TempDir(), "x.safetensors"), bad, nil)
	if err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("writing a tensor whose data does not match its shape: got %v", err)
	}
}

// sharedDir locates the read-only fixtures beside the checkout.
func sharedDir(t *testing.T) string {
	t.Helper()
	fixtures.Shared(t, "hf")
	return fixtures.SharedDir()
}

func TestSharedFixtures(t *testing.T) {
	shared := sharedDir(t)
	for _, arch := range []string{"llama3", "qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			dir := filepath.Join(shared, "fixtures", "hf", arch)
			var cfg struct {
				Vocab   int  `json:"vocab_size"`
				Hidden  int  `json:"hidden_size"`
				Inter   int  `json:"intermediate_size"`
				Layers  int  `json:"num_hidden_layers"`
				Heads   int  `json:"num_attention_heads"`
				KVHeads int  `json:"num_key_value_heads"`
				HeadDim int  `json:"head_dim"`
				Tied    bool `json:"tie_word_embeddings"`
			}
			raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.HeadDim == 0 {
				cfg.HeadDim = cfg.Hidden / cfg.Heads
			}
			infos, meta, err := ReadHeader(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if meta["format"] != "pt" {
				t.Errorf("metadata %v, want format=pt", meta)
			}
			want := map[string][]int{
				"model.embed_tokens.weight": {cfg.Vocab, cfg.Hidden},
				"model.norm.weight":         {cfg.Hidden},
			}
			if !cfg.Tied {
				want["lm_head.weight"] = []int{cfg.Vocab, cfg.Hidden}
			}
			for l := 0; l < cfg.Layers; l++ {
				p := "model.layers." + strconv.Itoa(l) + "."
				want[p+"self_attn.q_proj.weight"] = []int{cfg.Heads * cfg.HeadDim, cfg.Hidden}
				want[p+"self_attn.k_proj.weight"] = []int{cfg.KVHeads * cfg.HeadDim, cfg.Hidden}
				want[p+"self_attn.v_proj.weight"] = []int{cfg.KVHeads * cfg.HeadDim, cfg.Hidden}
				want[p+"self_attn.o_proj.weight"] = []int{cfg.Hidden, cfg.Heads * cfg.HeadDim}
				want[p+"mlp.gate_proj.weight"] = []int{cfg.Inter, cfg.Hidden}
				want[p+"mlp.up_proj.weight"] = []int{cfg.Inter, cfg.Hidden}
				want[p+"mlp.down_proj.weight"] = []int{cfg.Hidden, cfg.Inter}
				want[p+"input_layernorm.weight"] = []int{cfg.Hidden}
				want[p+"post_attention_layernorm.weight"] = []int{cfg.Hidden}
				if arch == "qwen2" {
					want[p+"self_attn.q_proj.bias"] = []int{cfg.Heads * cfg.HeadDim}
					want[p+"self_attn.k_proj.bias"] = []int{cfg.KVHeads * cfg.HeadDim}
					want[p+"self_attn.v_proj.bias"] = []int{cfg.KVHeads * cfg.HeadDim}
				}
				if arch == "qwen3" {
					want[p+"self_attn.q_norm.weight"] = []int{cfg.HeadDim}
					want[p+"self_attn.k_norm.weight"] = []int{cfg.HeadDim}
				}
			}
			if len(infos) != len(want) {
				t.Errorf("%d tensors, want %d", len(infos), len(want))
			}
			for name, shape := range want {
				ti, ok := infos[name]
				if !ok {
					t.Errorf("missing %s", name)
					continue
				}
				if ti.DType != F32 || !reflect.DeepEqual(ti.Shape, shape) {
					t.Errorf("%s: %s %v, want F32 %v", name, ti.DType, ti.Shape, shape)
				}
			}
			// Reading the data and writing it back reproduces the file byte for byte:
			// same layout, header and padding as the reference writer.
			tensors, err := ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for name, tt := range tensors {
				if _, err := tt.Float32(); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			out := filepath.Join(t.TempDir(), "model.safetensors")
			if err := WriteFile(out, tensors, meta); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
			b, _ := os.ReadFile(out)
			if !bytes.Equal(a, b) {
				t.Errorf("rewritten file differs from the reference writer's (%d vs %d bytes)", len(b), len(a))
			}
			ref, err := ReadFile(filepath.Join(dir, "reference.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if ids := ref["case1_input_ids"]; ids == nil || ids.DType != I64 || len(ids.Shape) != 2 {
				t.Errorf("case1_input_ids: %+v", ids)
			} else if v, err := ids.Int64(); err != nil || len(v) != ids.Shape[0]*ids.Shape[1] {
				t.Errorf("case1_input_ids: %d values, %v", len(v), err)
			}
		})
	}
}

func TestWriteDirSharded(t *testing.T) {
	dir := t.TempDir()
	tensors := map[string]*Tensor{}
	for i := 0; i < 7; i++ {
		vals := make([]float32, 10+i)
		for j := range vals {
			vals[j] = float32(i*100 + j)
		}
		ts, _ := FromFloat32([]int{len(vals)}, vals, F32)
		tensors["layer."+string(rune('a'+i))] = ts
	}
	// First a single file, then a sharded layout over it: the single file must go.
	if err := WriteDir(dir, tensors, 0); err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(dir, tensors, 120); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SingleFile)); err == nil {
		t.Error("stale model.safetensors left beside the shards")
	}
	raw, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var idx index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	shards := map[string]bool{}
	for _, s := range idx.WeightMap {
		shards[s] = true
	}
	if len(shards) < 3 {
		t.Errorf("%d shards for 7 tensors of ≥40 bytes under a 120-byte limit", len(shards))
	}
	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range tensors {
		if g := got[name]; g == nil || !bytes.Equal(g.Data, want.Data) {
			t.Errorf("%s differs after sharding", name)
		}
	}
	// Back to a single file: index and shards are removed.
	if err := WriteDir(dir, tensors, 1<<30); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != SingleFile {
		t.Errorf("directory holds %v, want only %s", entries, SingleFile)
	}
	if got, err := ReadDir(dir); err != nil || len(got) != len(tensors) {
		t.Errorf("ReadDir after rewrite: %d tensors, %v", len(got), err)
	}
}

func TestReadDirErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), SingleFile) {
		t.Errorf("empty directory: %v", err)
	}
	ts := map[string]*Tensor{"a": FromInt64([]int{1}, []int64{1})}
	if err := WriteFile(filepath.Join(dir, "s1.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}`), 0o644)
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("index naming a missing tensor: %v", err)
	}
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"weight_map":{"a":"../s1.safetensors"}}`), 0o644)
	if _, err := ReadDir(dir); err == nil {
		t.Error("shard outside the directory: want an error")
	}
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"weight_map":`), 0o644)
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), IndexFile) {
		t.Errorf("bad index JSON: %v", err)
	}
}

// file builds a raw safetensors file from a header string and a data size.
func file(header string, data int) []byte {
	b := make([]byte, 8, 8+len(header)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

func TestCorruptInputs(t *testing.T) {
	good := file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I8","shape":[4],"data_offsets":[8,12]}}`, 12)
	if _, _, err := parse(good); err != nil {
		t.Fatalf("good file: %v", err)
	}
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"short length", []byte{1, 2, 3}, "too short"},
		{"header past end", huge, "runs past the end"},
		{"truncated data", good[:len(good)-3], "outside"},
		{"bad json", file(`{"a":`, 0), "not a JSON object"},
		{"json array", file(`[1,2]`, 0), "not a JSON object"},
		{"json null", file(`null`, 0), "not a JSON object"},
		{"trailing garbage", file(`{}xx`, 0), "after the JSON"},
		{"unknown dtype", file(`{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, 1), `"w": dtype "F8_E4M3"`},
		{"missing field", file(`{"w":{"dtype":"F32","shape":[1]}}`, 4), `"w"`},
		{"size mismatch", file(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), "needs 12 bytes"},
		{"offsets reversed", file(`{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, 8), "outside"},
		{"negative offset", file(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, 8), "outside"},
		{"negative dim", file(`{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, 8), "negative"},
		{"overflowing shape", file(`{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 8), "too large"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlap"},
		{"bad metadata", file(`{"__metadata__":{"n":1}}`, 0), "__metadata__"},
	}
	for _, c := range cases {
		_, _, err := parse(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// File-level errors name the file.
	path := filepath.Join(t.TempDir(), "broken.safetensors")
	os.WriteFile(path, good[:len(good)-3], 0o644)
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadFile of a truncated file: %v", err)
	}
	if _, _, err := ReadHeader(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadHeader of a truncated file: %v", err)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8))
	f.Add(file(`{"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[0,2]}}`, 2))
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tensors, _, err := parse(data)
		if err != nil {
			return
		}
		for name, ts := range tensors {
			if err := ts.checkSize(); err != nil {
				t.Fatalf("accepted tensor %q fails its own size check: %v", name, err)
			}
			if ts.DType.IsFloat() {
				if _, err := ts.Float32(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := ts.Int64(); err != nil && ts.DType != U64 {
				t.Fatal(err)
			}
		}
	})
}

// TestGoldenFromReference reads a file written by the reference Python
// package (scripts/gen_safetensors_golden.py) and writes it back identically.
func TestGoldenFromReference(t *testing.T) {
	path := filepath.Join("testdata", "golden.safetensors")
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantF := []float32{0, float32(math.Copysign(0, -1)), 1.5, -2.25, 1e-8, 65504, float32(math.Inf(1)), float32(math.Inf(-1))}
	f32, _ := got["f32"].Float32()
	f64, _ := got["f64"].Float32()
	f16, _ := got["f16"].Float32()
	for i, w := range wantF {
		if math.Float32bits(f32[i]) != math.Float32bits(w) || math.Float32bits(f64[i]) != math.Float32bits(w) {
			t.Errorf("f32/f64[%d] = %g/%g, want %g", i, f32[i], f64[i], w)
		}
		if hw := F16ToFloat32(Float32ToF16(w)); math.Float32bits(f16[i]) != math.Float32bits(hw) {
			t.Errorf("f16[%d] = %g, want %g", i, f16[i], hw)
		}
	}
	ints := map[string][]int64{
		"i64": {0, -1, 1 << 40, -(1 << 62)}, "i32": {1, -2, 3, -(1 << 31)}, "i16": {-32768, 32767, 5},
		"i8": {-128, 127, 0}, "u8": {0, 200, 255}, "bool": {1, 0, 1},
	}
	for name, want := range ints {
		if v, err := got[name].Int64(); err != nil || !reflect.DeepEqual(v, want) {
			t.Errorf("%s = %v (%v), want %v", name, v, err, want)
		}
	}
	if s := got["scalar"]; len(s.Shape) != 0 || s.DType != F32 {
		t.Errorf("scalar: %+v", s)
	}
	if e := got["empty"]; !reflect.DeepEqual(e.Shape, []int{0, 3}) || len(e.Data) != 0 {
		t.Errorf("empty: %+v", e)
	}
	_, meta, err := ReadHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "golden.safetensors")
	if err := WriteFile(out, got, meta); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Errorf("rewritten golden file differs from the reference writer's output:\n%q\n%q", a[:min(len(a), 400)], b[:min(len(b), 400)])
	}
}
