package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// maxHeaderBytes bounds the JSON header, as the reference implementation
// does, so a corrupt length cannot make a reader allocate gigabytes.
const maxHeaderBytes = 100 << 20

// metadataKey is the reserved header entry holding string metadata.
const metadataKey = "__metadata__"

// ReadHeader returns the tensor descriptions and metadata of a file without
// reading the tensor data.
func ReadHeader(path string) (map[string]TensorInfo, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	infos, meta, _, err := readHeader(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return infos, meta, nil
}

// ReadFile reads every tensor of one file. The data section is read once
// into a single buffer that the returned tensors share.
func ReadFile(path string) (map[string]*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	infos, _, dataStart, err := readHeader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	body := make([]byte, st.Size()-dataStart)
	if _, err := io.ReadFull(f, body); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading data: %w", path, err)
	}
	return sliceTensors(infos, body), nil
}

// readHeader reads and validates the header from r, positioned at the start
// of a file of fileSize bytes, and returns where the data section begins.
func readHeader(r io.Reader, fileSize int64) (map[string]TensorInfo, map[string]string, int64, error) {
	if fileSize < 8 {
		return nil, nil, 0, fmt.Errorf("file of %d bytes is too short for the 8-byte header length", fileSize)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, nil, 0, fmt.Errorf("reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > uint64(fileSize-8) {
		return nil, nil, 0, fmt.Errorf("header length %d runs past the end of the file (%d bytes)", n, fileSize)
	}
	if n > maxHeaderBytes {
		return nil, nil, 0, fmt.Errorf("header length %d exceeds the %d-byte limit", n, maxHeaderBytes)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, 0, fmt.Errorf("reading header: %w", err)
	}
	dataStart := 8 + int64(n)
	infos, meta, err := parseHeader(hdr, fileSize-dataStart)
	if err != nil {
		return nil, nil, 0, err
	}
	return infos, meta, dataStart, nil
}

// parseHeader decodes the JSON header and checks every entry against a data
// section of dataSize bytes: known dtype, byte count matching the shape,
// offsets inside the data and no two tensors sharing bytes.
func parseHeader(hdr []byte, dataSize int64) (map[string]TensorInfo, map[string]string, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("header is not a JSON object: %w", err)
	}
	if raw == nil {
		return nil, nil, errors.New("header is not a JSON object")
	}
	if rest := bytes.TrimRight(hdr[dec.InputOffset():], " \t\r\n\x00"); len(rest) > 0 {
		return nil, nil, errors.New("header has bytes after the JSON object")
	}
	var meta map[string]string
	infos := make(map[string]TensorInfo, len(raw))
	for name, v := range raw {
		if name == metadataKey {
			if err := json.Unmarshal(v, &meta); err != nil {
				return nil, nil, fmt.Errorf("%s must map strings to strings: %w", metadataKey, err)
			}
			continue
		}
		var e struct {
			DType       *DType    `json:"dtype"`
			Shape       []int     `json:"shape"`
			DataOffsets *[2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: bad header entry: %w", name, err)
		}
		if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
			return nil, nil, fmt.Errorf("tensor %q: header entry needs dtype, shape and data_offsets", name)
		}
		size := e.DType.Size()
		if size == 0 {
			return nil, nil, fmt.Errorf("tensor %q: dtype %q is not supported", name, *e.DType)
		}
		elems, err := checkedElements(e.Shape, size)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi < lo || hi > dataSize {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d,%d] lie outside the %d-byte data section", name, lo, hi, dataSize)
		}
		if hi-lo != elems*int64(size) {
			return nil, nil, fmt.Errorf("tensor %q: %s shape %v needs %d bytes, data_offsets [%d,%d] give %d",
				name, *e.DType, e.Shape, elems*int64(size), lo, hi, hi-lo)
		}
		infos[name] = TensorInfo{DType: *e.DType, Shape: e.Shape, DataOffsets: *e.DataOffsets}
	}
	if err := checkOverlap(infos); err != nil {
		return nil, nil, err
	}
	return infos, meta, nil
}

func checkOverlap(infos map[string]TensorInfo) error {
	names := make([]string, 0, len(infos))
	for n, ti := range infos {
		if ti.DataOffsets[1] > ti.DataOffsets[0] {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := infos[names[i]].DataOffsets, infos[names[j]].DataOffsets
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		return names[i] < names[j]
	})
	for i := 1; i < len(names); i++ {
		prev, cur := infos[names[i-1]].DataOffsets, infos[names[i]].DataOffsets
		if cur[0] < prev[1] {
			return fmt.Errorf("tensors %q [%d,%d] and %q [%d,%d] overlap", names[i-1], prev[0], prev[1], names[i], cur[0], cur[1])
		}
	}
	return nil
}

// sliceTensors builds tensors whose data are capacity-limited views of body,
// so an append by a caller cannot overwrite a neighbour.
func sliceTensors(infos map[string]TensorInfo, body []byte) map[string]*Tensor {
	out := make(map[string]*Tensor, len(infos))
	for name, ti := range infos {
		lo, hi := ti.DataOffsets[0], ti.DataOffsets[1]
		out[name] = &Tensor{DType: ti.DType, Shape: ti.Shape, Data: body[lo:hi:hi]}
	}
	return out
}

// parse decodes a whole file held in memory.
func parse(data []byte) (map[string]*Tensor, map[string]string, error) {
	infos, meta, start, err := readHeader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, nil, err
	}
	return sliceTensors(infos, data[start:]), meta, nil
}

// IndexFile is the name of the shard index of a sharded checkpoint.
const IndexFile = "model.safetensors.index.json"

// SingleFile is the name of an unsharded checkpoint's weights.
const SingleFile = "model.safetensors"

// index is the JSON layout of model.safetensors.index.json.
type index struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// ReadDir reads the weights of a checkpoint directory: the shards listed in
// model.safetensors.index.json if present, else model.safetensors.
func ReadDir(dir string) (map[string]*Tensor, error) {
	idxPath := filepath.Join(dir, IndexFile)
	raw, err := os.ReadFile(idxPath)
	if errors.Is(err, os.ErrNotExist) {
		single := filepath.Join(dir, SingleFile)
		if _, err := os.Stat(single); err != nil {
			return nil, fmt.Errorf("checkpoint %s: neither %s nor %s: %w", dir, IndexFile, SingleFile, err)
		}
		return ReadFile(single)
	}
	if err != nil {
		return nil, err
	}
	var idx index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", idxPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: weight_map is empty", idxPath)
	}
	byShard := map[string][]string{}
	for name, shard := range idx.WeightMap {
		if shard == "" || filepath.Base(shard) != shard {
			return nil, fmt.Errorf("%s: tensor %q: shard %q must be a file name in the same directory", idxPath, name, shard)
		}
		byShard[shard] = append(byShard[shard], name)
	}
	shards := make([]string, 0, len(byShard))
	for s := range byShard {
		shards = append(shards, s)
	}
	sort.Strings(shards)
	out := make(map[string]*Tensor, len(idx.WeightMap))
	for _, shard := range shards {
		path := filepath.Join(dir, shard)
		ts, err := ReadFile(path)
		if err != nil {
			return nil, err
		}
		for _, name := range byShard[shard] {
			t, ok := ts[name]
			if !ok {
				return nil, fmt.Errorf("%s: tensor %q is listed in %s but missing from the shard", path, name, IndexFile)
			}
			out[name] = t
		}
	}
	return out, nil
}
