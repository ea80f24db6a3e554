package model

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.safetensors")
	a, _ := stFromFloat32([]int{2, 3}, []float32{1, -2, 3.5, 0, 1e-3, 7}, "F32")
	b, _ := stFromFloat32([]int{3}, []float32{1, 0.33333334, -65504}, "BF16")
	if err := stWriteFile(path, map[string]*stTensor{"a": a, "b": b}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	got, err := stReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fa, _ := got["a"].Float32()
	fb, _ := got["b"].Float32()
	if !slices.Equal(fa, []float32{1, -2, 3.5, 0, 1e-3, 7}) || !slices.Equal(got["a"].Shape, []int{2, 3}) {
		t.Errorf("a = %v %v", fa, got["a"].Shape)
	}
	if fb[0] != 1 || fb[1] != 0.333984375 || fb[2] != -65536 {
		t.Errorf("b = %v (bfloat16, rounded to nearest even)", fb)
	}
	if _, err := got["a"].Int64(); err == nil {
		t.Error("Int64 of an F32 tensor")
	}
}

func FuzzSafetensorsParse(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.safetensors")
	a, _ := stFromFloat32([]int{2}, []float32{1, 2}, "F32")
	if err := stWriteFile(path, map[string]*stTensor{"a": a}, nil); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Add([]byte(`xxxxxxxx{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := stParse(data)
		if err != nil {
			return
		}
		for _, ten := range ts {
			if ten.DType == "F32" || ten.DType == "BF16" || ten.DType == "F16" {
				if _, err := ten.Float32(); err != nil {
					t.Errorf("valid tensor does not decode: %v", err)
				}
			}
		}
	})
}
