// Package gguf reads GGUF files (the llama.cpp/ggml checkpoint format,
// versions 2 and 3), dequantises their tensors and converts llama, qwen2 and
// qwen3 models into Hugging Face checkpoint directories.
//
// A GGUF file is a little-endian header (magic "GGUF", version, tensor and
// metadata counts), typed key/value metadata, one descriptor per tensor
// (name, dimensions innermost first, ggml type, offset), padding to the
// alignment, then the tensor data.
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"sort"
	"strconv"
)

// magic is "GGUF" read as a little-endian uint32.
const magic = 0x46554747

// DefaultAlignment applies when general.alignment is absent.
const DefaultAlignment = 32

// maxDims is GGML_MAX_DIMS: ggml tensors have at most four dimensions.
const maxDims = 4

// maxStringBytes bounds a single metadata string or tensor name so that a
// corrupt length cannot trigger a huge allocation.
const maxStringBytes = 1 << 26

// File is a parsed GGUF header. Tensor data stays in the file and is read
// on demand with ReadTensor.
type File struct {
	Path       string
	Version    uint32
	Alignment  int64
	Metadata   map[string]any // see Value types below
	Keys       []string       // metadata keys in file order
	Tensors    []TensorInfo   // in file order
	DataOffset int64          // start of the data section in the file
	Size       int64          // file size

	r      io.ReaderAt
	closer io.Closer
	byName map[string]int
}

// TensorInfo describes one tensor of a GGUF file. Dims are in ggml order,
// innermost (contiguous) dimension first: the reverse of a row-major shape.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   Type
	Offset uint64 // relative to File.DataOffset
	Bytes  int64  // size of the data, 0 when the type's layout is unknown
}

// Elements returns the number of elements of the tensor.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= int64(d)
	}
	return n
}

// Shape returns the row-major (Hugging Face / NumPy) shape: Dims reversed.
func (t TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int(d)
	}
	return s
}

// Metadata value types as numbered in the format.
const (
	valUint8   = 0
	valInt8    = 1
	valUint16  = 2
	valInt16   = 3
	valUint32  = 4
	valInt32   = 5
	valFloat32 = 6
	valBool    = 7
	valString  = 8
	valArray   = 9
	valUint64  = 10
	valInt64   = 11
	valFloat64 = 12
)

// valueSize is the encoded size of a fixed-size metadata type, 0 otherwise.
func valueSize(t uint32) int64 {
	switch t {
	case valUint8, valInt8, valBool:
		return 1
	case valUint16, valInt16:
		return 2
	case valUint32, valInt32, valFloat32:
		return 4
	case valUint64, valInt64, valFloat64:
		return 8
	}
	return 0
}

// Open parses the header of the GGUF file at path. The file stays open for
// ReadTensor until Close.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	g, err := Parse(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	g.Path = path
	g.closer = f
	return g, nil
}

// Close releases the file opened by Open.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// reader decodes little-endian values while tracking the offset, so every
// count can be checked against the bytes that remain.
type reader struct {
	br   *bufio.Reader
	off  int64
	size int64
	buf  [8]byte
}

var errTruncated = errors.New("file ends inside the header")

func (r *reader) read(n int) ([]byte, error) {
	if int64(n) > r.size-r.off {
		return nil, errTruncated
	}
	if _, err := io.ReadFull(r.br, r.buf[:n]); err != nil {
		return nil, errTruncated
	}
	r.off += int64(n)
	return r.buf[:n], nil
}

func (r *reader) u32() (uint32, error) {
	b, err := r.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64() (uint64, error) {
	b, err := r.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a uint64 element count and checks that at least minSize
// bytes per element remain in the file.
func (r *reader) count(what string, minSize int64) (int64, error) {
	n, err := r.u64()
	if err != nil {
		return 0, err
	}
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(r.size-r.off)/uint64(minSize) {
		return 0, fmt.Errorf("%s count %d exceeds what the file can hold", what, n)
	}
	return int64(n), nil
}

func (r *reader) str() (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(r.size-r.off) || n > maxStringBytes {
		return "", fmt.Errorf("string length %d exceeds the file", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.br, b); err != nil {
		return "", errTruncated
	}
	r.off += int64(n)
	return string(b), nil
}

// Parse decodes the header of a GGUF file of the given size read through r.
func Parse(r io.ReaderAt, size int64) (*File, error) {
	rd := &reader{br: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<16), size: size}
	m, err := rd.u32()
	if err != nil {
		return nil, fmt.Errorf("file of %d bytes is too short for a GGUF header", size)
	}
	if m != magic {
		return nil, fmt.Errorf("not a GGUF file (magic %#08x)", m)
	}
	version, err := rd.u32()
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, errors.New("GGUF version 1 is not supported (re-convert the model with a current llama.cpp)")
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		return nil, errors.New("big-endian GGUF files are not supported")
	default:
		return nil, fmt.Errorf("unknown GGUF version %d", version)
	}
	// A tensor descriptor takes at least 8+4+4+8 bytes, a key/value 8+4+1.
	nTensors, err := rd.count("tensor", 24)
	if err != nil {
		return nil, err
	}
	nKV, err := rd.count("metadata", 13)
	if err != nil {
		return nil, err
	}
	f := &File{Version: version, Metadata: make(map[string]any, nKV), Size: size, r: r, byName: map[string]int{}}
	for i := int64(0); i < nKV; i++ {
		key, err := rd.str()
		if err != nil {
			return nil, fmt.Errorf("metadata entry %d: key: %w", i, err)
		}
		if _, dup := f.Metadata[key]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice", key)
		}
		typ, err := rd.u32()
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := rd.value(typ, 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		f.Metadata[key] = v
		f.Keys = append(f.Keys, key)
	}
	f.Alignment = DefaultAlignment
	if v, ok := f.Metadata["general.alignment"]; ok {
		a, ok := asUint(v)
		if !ok || a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, fmt.Errorf("general.alignment %v must be a power of two", v)
		}
		f.Alignment = int64(a)
	}
	for i := int64(0); i < nTensors; i++ {
		t, err := rd.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor descriptor %d: %w", i, err)
		}
		if _, dup := f.byName[t.Name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		f.byName[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = (rd.off + f.Alignment - 1) / f.Alignment * f.Alignment
	if err := f.checkTensors(); err != nil {
		return nil, err
	}
	return f, nil
}

func (r *reader) value(typ uint32, depth int) (any, error) {
	if s := valueSize(typ); s > 0 {
		b, err := r.read(int(s))
		if err != nil {
			return nil, err
		}
		return scalar(typ, b)
	}
	switch typ {
	case valString:
		return r.str()
	case valArray:
		if depth > 2 {
			return nil, errors.New("arrays nested too deeply")
		}
		et, err := r.u32()
		if err != nil {
			return nil, err
		}
		min := valueSize(et)
		if et == valString || et == valArray {
			min = 8
		} else if min == 0 {
			return nil, fmt.Errorf("unknown array element type %d", et)
		}
		n, err := r.count("array element", min)
		if err != nil {
			return nil, err
		}
		return r.array(et, n, depth)
	}
	return nil, fmt.Errorf("unknown value type %d", typ)
}

func scalar(typ uint32, b []byte) (any, error) {
	switch typ {
	case valUint8:
		return b[0], nil
	case valInt8:
		return int8(b[0]), nil
	case valBool:
		if b[0] > 1 {
			return nil, fmt.Errorf("bool byte %d is neither 0 nor 1", b[0])
		}
		return b[0] == 1, nil
	case valUint16:
		return binary.LittleEndian.Uint16(b), nil
	case valInt16:
		return int16(binary.LittleEndian.Uint16(b)), nil
	case valUint32:
		return binary.LittleEndian.Uint32(b), nil
	case valInt32:
		return int32(binary.LittleEndian.Uint32(b)), nil
	case valFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case valUint64:
		return binary.LittleEndian.Uint64(b), nil
	case valInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	case valFloat64:
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	}
	return nil, fmt.Errorf("unknown value type %d", typ)
}

// array decodes n elements into a typed slice: []string, []int32, []float32
// and so on for scalars, []any for nested arrays.
func (r *reader) array(et uint32, n int64, depth int) (any, error) {
	switch et {
	case valString:
		out := make([]string, n)
		for i := range out {
			s, err := r.str()
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = s
		}
		return out, nil
	case valArray:
		out := make([]any, n)
		for i := range out {
			v, err := r.value(valArray, depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = v
		}
		return out, nil
	}
	size := valueSize(et)
	raw := make([]byte, n*size)
	if _, err := io.ReadFull(r.br, raw); err != nil {
		return nil, errTruncated
	}
	r.off += int64(len(raw))
	le := binary.LittleEndian
	switch et {
	case valUint8:
		return raw, nil
	case valInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out, nil
	case valBool:
		out := make([]bool, n)
		for i := range out {
			if raw[i] > 1 {
				return nil, fmt.Errorf("element %d: bool byte %d is neither 0 nor 1", i, raw[i])
			}
			out[i] = raw[i] == 1
		}
		return out, nil
	case valUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out, nil
	case valInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case valUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out, nil
	case valInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case valFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case valUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out, nil
	case valInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case valFloat64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown array element type %d", et)
}

func (r *reader) tensorInfo() (TensorInfo, error) {
	name, err := r.str()
	if err != nil {
		return TensorInfo{}, err
	}
	nd, err := r.u32()
	if err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	if nd > maxDims {
		return TensorInfo{}, fmt.Errorf("tensor %q has %d dimensions, at most %d allowed", name, nd, maxDims)
	}
	t := TensorInfo{Name: name, Dims: make([]uint64, nd)}
	elems := uint64(1)
	for i := range t.Dims {
		d, err := r.u64()
		if err != nil {
			return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
		}
		if d == 0 || d > math.MaxInt32*uint64(256) {
			return TensorInfo{}, fmt.Errorf("tensor %q: dimension %d is %d", name, i, d)
		}
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 || lo > math.MaxInt64/8 {
			return TensorInfo{}, fmt.Errorf("tensor %q: dimensions %v overflow", name, t.Dims)
		}
		elems = lo
		t.Dims[i] = d
	}
	typ, err := r.u32()
	if err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	t.Type = Type(typ)
	if t.Offset, err = r.u64(); err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	if bs, ts := t.Type.blockLayout(); bs > 0 {
		if nd > 0 && t.Dims[0]%uint64(bs) != 0 {
			return TensorInfo{}, fmt.Errorf("tensor %q: row of %d elements is not a multiple of the %s block size %d", name, t.Dims[0], t.Type, bs)
		}
		t.Bytes = int64(elems/uint64(bs)) * int64(ts)
	}
	return t, nil
}

// checkTensors verifies that every tensor lies inside the data section, is
// aligned and does not share bytes with another.
func (f *File) checkTensors() error {
	dataSize := f.Size - f.DataOffset
	if dataSize < 0 {
		dataSize = 0
	}
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	for _, t := range f.Tensors {
		if t.Offset%uint64(f.Alignment) != 0 {
			return fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > uint64(dataSize) || uint64(t.Bytes) > uint64(dataSize)-t.Offset {
			return fmt.Errorf("tensor %q: %d bytes at offset %d run past the end of the %d-byte data section (truncated file?)",
				t.Name, t.Bytes, t.Offset, dataSize)
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for i := 1; i < len(order); i++ {
		p, c := f.Tensors[order[i-1]], f.Tensors[order[i]]
		if p.Bytes > 0 && c.Offset < p.Offset+uint64(p.Bytes) {
			return fmt.Errorf("tensors %q and %q overlap", p.Name, c.Name)
		}
	}
	return nil
}

// Tensor returns the descriptor of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// ReadTensor returns the raw bytes of a tensor.
func (f *File) ReadTensor(t TensorInfo) ([]byte, error) {
	if t.Bytes == 0 && t.Elements() > 0 {
		return nil, fmt.Errorf("tensor %q: type %s is not supported", t.Name, t.Type)
	}
	b := make([]byte, t.Bytes)
	if _, err := f.r.ReadAt(b, f.DataOffset+int64(t.Offset)); err != nil {
		return nil, fmt.Errorf("tensor %q: reading %d bytes: %w", t.Name, t.Bytes, err)
	}
	return b, nil
}

// Float32 reads a tensor and dequantises it to float32, in row-major order
// of Shape().
func (f *File) Float32(t TensorInfo) ([]float32, error) {
	raw, err := f.ReadTensor(t)
	if err != nil {
		return nil, err
	}
	out, err := Dequantize(t.Type, raw, t.Elements())
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, nil
}

// String returns a string metadata value.
func (f *File) String(key string) (string, bool) {
	s, ok := f.Metadata[key].(string)
	return s, ok
}

// Uint returns an unsigned-integer-valued metadata entry of any integer type.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Metadata[key]
	if !ok {
		return 0, false
	}
	return asUint(v)
}

// Float returns a numeric metadata entry as float64. A float32 value is
// widened to the shortest decimal that rounds back to it (1e-05, not
// 9.999999747378752e-06), which is what the checkpoint it came from said.
func (f *File) Float(key string) (float64, bool) {
	switch v := f.Metadata[key].(type) {
	case float32:
		d, err := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
		return d, err == nil
	case float64:
		return v, true
	}
	if u, ok := f.Uint(key); ok {
		return float64(u), true
	}
	return 0, false
}

// Strings returns a string-array metadata entry.
func (f *File) Strings(key string) ([]string, bool) {
	s, ok := f.Metadata[key].([]string)
	return s, ok
}

// Ints returns an integer-array metadata entry of any integer element type.
func (f *File) Ints(key string) ([]int64, bool) {
	switch v := f.Metadata[key].(type) {
	case []int32:
		return widen(v), true
	case []uint32:
		return widen(v), true
	case []int64:
		return v, true
	case []uint8:
		return widen(v), true
	case []int8:
		return widen(v), true
	case []int16:
		return widen(v), true
	case []uint16:
		return widen(v), true
	case []uint64:
		out := make([]int64, len(v))
		for i, x := range v {
			if x > math.MaxInt64 {
				return nil, false
			}
			out[i] = int64(x)
		}
		return out, true
	}
	return nil, false
}

func widen[T int8 | uint8 | int16 | uint16 | int32 | uint32](v []T) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func asUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}
