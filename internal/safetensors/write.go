package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/ssp-project/ssp/internal/outdir"
)

// Spec describes a tensor to be written whose data is produced on demand.
type Spec struct {
	DType DType
	Shape []int
}

// bytes returns the data size of the tensor, checking the shape.
func (s Spec) bytes() (int64, error) {
	size := s.DType.Size()
	if size == 0 {
		return 0, fmt.Errorf("dtype %q is not supported", s.DType)
	}
	n, err := checkedElements(s.Shape, size)
	return n * int64(size), err
}

// dtypeRank is the declaration order of dtypes in the reference
// implementation, whose writer sorts by it (descending) before the name.
var dtypeRank = map[DType]int{BOOL: 0, U8: 1, I8: 2, I16: 3, U16: 4, F16: 5, BF16: 6, I32: 7, U32: 8, F32: 9, F64: 10, I64: 11, U64: 12}

// layout orders tensors as the reference writer does: dtypes in descending
// reference order, which puts wider types first so every tensor starts at a
// multiple of its element size, then by name. The same tensors therefore
// produce the same bytes as the reference writer.
func layout(specs map[string]Spec) []string {
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := dtypeRank[specs[names[i]].DType], dtypeRank[specs[names[j]].DType]
		if ri != rj {
			return ri > rj
		}
		return names[i] < names[j]
	})
	return names
}

// encodeHeader returns the padded header bytes (length prefix included) for
// tensors written in the given order.
func encodeHeader(names []string, specs map[string]Spec, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return nil, err
		}
		b.WriteString(`"` + metadataKey + `":`)
		b.Write(m)
		first = false
	}
	var off int64
	for _, name := range names {
		t := specs[name]
		if name == metadataKey {
			return nil, fmt.Errorf("tensor name %q is reserved", name)
		}
		size, err := t.bytes()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		key, _ := json.Marshal(name)
		b.Write(key)
		b.WriteString(`:{"dtype":"` + string(t.DType) + `","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		end := off + size
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	out := make([]byte, 8, 8+b.Len())
	binary.LittleEndian.PutUint64(out, uint64(b.Len()))
	return append(out, b.Bytes()...), nil
}

// WriteFile writes tensors and string metadata to path atomically: the file
// is written under a temporary name in the same directory, synced, then
// renamed, so a crash never leaves a partial checkpoint behind.
func WriteFile(path string, tensors map[string]*Tensor, metadata map[string]string) error {
	specs, data, err := fromTensors(tensors)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return WriteFileFunc(path, specs, metadata, data)
}

// fromTensors splits in-memory tensors into specs and a data callback.
func fromTensors(tensors map[string]*Tensor) (map[string]Spec, func(string) ([]byte, error), error) {
	specs := make(map[string]Spec, len(tensors))
	for name, t := range tensors {
		if err := t.checkSize(); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		specs[name] = Spec{DType: t.DType, Shape: t.Shape}
	}
	return specs, func(name string) ([]byte, error) { return tensors[name].Data, nil }, nil
}

// WriteFileFunc is WriteFile for tensors produced one at a time: data is
// called once per tensor, in file order, and must return exactly the bytes
// its spec describes. Only one tensor need be in memory at a time.
func WriteFileFunc(path string, specs map[string]Spec, metadata map[string]string, data func(name string) ([]byte, error)) error {
	names := layout(specs)
	hdr, err := encodeHeader(names, specs, metadata)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return writeAtomic(path, func(w io.Writer) error {
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, n := range names {
			b, err := data(n)
			if err != nil {
				return fmt.Errorf("tensor %q: %w", n, err)
			}
			if want, _ := specs[n].bytes(); int64(len(b)) != want {
				return fmt.Errorf("tensor %q: got %d bytes, its %s shape %v needs %d", n, len(b), specs[n].DType, specs[n].Shape, want)
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeAtomic creates path through a temporary file and rename.
func writeAtomic(path string, fill func(io.Writer) error) error {
	return outdir.WriteFile(path, fill)
}

// shardName matches the shard files WriteDir creates.
var shardName = regexp.MustCompile(`^model-\d{5}-of-\d{5}\.safetensors$`)

// WriteDir writes the tensors of a checkpoint into dir (which must exist):
// one model.safetensors when their data fit in maxShardBytes (or when
// maxShardBytes ≤ 0), else shards model-0000i-of-0000n.safetensors and
// model.safetensors.index.json. Weight files of an earlier layout left in
// dir are removed so readers cannot pick up stale weights.
func WriteDir(dir string, tensors map[string]*Tensor, maxShardBytes int64) error {
	specs, data, err := fromTensors(tensors)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	return WriteDirFunc(dir, specs, maxShardBytes, data)
}

// WriteDirFunc is WriteDir for tensors produced one at a time, as in
// WriteFileFunc.
func WriteDirFunc(dir string, specs map[string]Spec, maxShardBytes int64, data func(name string) ([]byte, error)) error {
	meta := map[string]string{"format": "pt"}
	var total int64
	sizes := make(map[string]int64, len(specs))
	for name, s := range specs {
		n, err := s.bytes()
		if err != nil {
			return fmt.Errorf("checkpoint %s: tensor %q: %w", dir, name, err)
		}
		sizes[name] = n
		total += n
	}
	if maxShardBytes <= 0 || total <= maxShardBytes {
		if err := WriteFileFunc(filepath.Join(dir, SingleFile), specs, meta, data); err != nil {
			return err
		}
		return removeStale(dir, nil)
	}
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	var groups [][]string
	var size int64
	for _, n := range names {
		sz := sizes[n]
		if len(groups) == 0 || (size+sz > maxShardBytes && size > 0) {
			groups = append(groups, nil)
			size = 0
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], n)
		size += sz
	}
	idx := index{Metadata: map[string]any{"total_size": total}, WeightMap: map[string]string{}}
	keep := map[string]bool{}
	for i, g := range groups {
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(groups))
		part := make(map[string]Spec, len(g))
		for _, n := range g {
			part[n] = specs[n]
			idx.WeightMap[n] = file
		}
		if err := WriteFileFunc(filepath.Join(dir, file), part, meta, data); err != nil {
			return err
		}
		keep[file] = true
	}
	js, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if err := writeAtomic(filepath.Join(dir, IndexFile), func(w io.Writer) error {
		_, err := w.Write(js)
		return err
	}); err != nil {
		return err
	}
	keep[IndexFile] = true
	return removeStale(dir, keep)
}

// removeStale deletes weight files of another layout; keep == nil means the
// single-file layout was written.
func removeStale(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		stale := false
		if keep == nil {
			stale = n == IndexFile || shardName.MatchString(n)
		} else {
			stale = n == SingleFile || (shardName.MatchString(n) && !keep[n])
		}
		if stale {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("removing stale %s: %w", n, err)
			}
		}
	}
	return nil
}
