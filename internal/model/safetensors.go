package model

// The safetensors files the model reads and writes: weights (F32, BF16,
// F16), reference tensors (I64) and optimizer state. A file is an 8-byte
// little-endian header length, a JSON header mapping names to dtype, shape
// and byte range, then the data.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/x448/float16"
)

// stTensor is one tensor of a safetensors file; Data aliases the file.
type stTensor struct {
	DType string
	Shape []int
	Data  []byte
}

func (t *stTensor) Float32() ([]float32, error) {
	switch t.DType {
	case "F32":
		out := make([]float32, len(t.Data)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		return out, nil
	case "BF16":
		out := make([]float32, len(t.Data)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
		return out, nil
	case "F16":
		out := make([]float32, len(t.Data)/2)
		for i := range out {
			out[i] = float16.Frombits(binary.LittleEndian.Uint16(t.Data[2*i:])).Float32()
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s is not a floating-point type", t.DType)
}

func (t *stTensor) Int64() ([]int64, error) {
	if t.DType != "I64" {
		return nil, fmt.Errorf("dtype %s is not I64", t.DType)
	}
	out := make([]int64, len(t.Data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

func stReadFile(path string) (map[string]*stTensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return stParse(data)
}

// stParse decodes a safetensors file, checking every offset and shape.
func stParse(data []byte) (map[string]*stTensor, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("safetensors: file of %d bytes has no header", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the file (%d bytes)", n, len(data))
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &hdr); err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	body := data[8+n:]
	out := map[string]*stTensor{}
	for name, v := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %s: %w", name, err)
		}
		size := map[string]int{"F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "F64": 8}[e.DType]
		if size == 0 {
			return nil, fmt.Errorf("safetensors: tensor %s: dtype %q is not supported", name, e.DType)
		}
		elems := 1
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && elems > math.MaxInt32/d) {
				return nil, fmt.Errorf("safetensors: tensor %s: bad shape %v", name, e.Shape)
			}
			elems *= d
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > len(body) || hi-lo != elems*size {
			return nil, fmt.Errorf("safetensors: tensor %s: byte range [%d,%d) does not hold %v %s in a %d-byte body",
				name, lo, hi, e.Shape, e.DType, len(body))
		}
		out[name] = &stTensor{e.DType, e.Shape, body[lo:hi]}
	}
	return out, nil
}

// stWriteFile writes float32 tensors atomically (temp file + rename).
func stWriteFile(path string, tensors map[string]*stTensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	hdr := map[string]any{}
	if metadata != nil {
		hdr["__metadata__"] = metadata
	}
	off := 0
	for _, n := range names {
		t := tensors[n]
		hdr[n] = map[string]any{"dtype": t.DType, "shape": t.Shape, "data_offsets": []int{off, off + len(t.Data)}}
		off += len(t.Data)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
	_, err = f.Write(append(n[:], h...))
	for _, name := range names {
		if err == nil {
			_, err = f.Write(tensors[name].Data)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func stFromFloat32(shape []int, data []float32, dtype string) (*stTensor, error) {
	switch dtype {
	case "F32":
		b := make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return &stTensor{"F32", shape, b}, nil
	case "BF16":
		b := make([]byte, 2*len(data))
		for i, v := range data {
			bits := math.Float32bits(v)
			bits += 0x7fff + (bits>>16)&1 // round to nearest even
			binary.LittleEndian.PutUint16(b[2*i:], uint16(bits>>16))
		}
		return &stTensor{"BF16", shape, b}, nil
	}
	return nil, fmt.Errorf("dtype %s", dtype)
}
