// Package vector is ssp's dense vector index: L2-normalised embeddings stored
// quantised (float16, or int8 with one scale per vector) in memory-mapped
// files, searched exactly by inner product (Search) or approximately through
// an HNSW graph kept in the same directory (SearchApprox).
//
// An index directory is built by a streaming Writer that makes its progress
// durable chunk by chunk, so that a killed build resumes at the last complete
// chunk (Resume), and is sealed by Finish, which writes checksums and the
// metadata file last, atomically.
package vector

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ssp-project/ssp/internal/mmapfile"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"syscall"
)

// DType is the storage type of the vector components.
type DType string

const (
	// Float16 stores IEEE half-precision components: about 3 significant
	// digits, 2 bytes per component.
	Float16 DType = "float16"
	// Int8 stores each vector as signed bytes in [-127, 127] times one
	// float32 scale for the whole vector: 1 byte per component.
	Int8 DType = "int8"
)

// Result is one hit: the vector's position in insertion order and its inner
// product with the query.
type Result struct {
	ID    int
	Score float32
}

// ErrCorrupt is wrapped by errors about damaged index files.
var ErrCorrupt = errors.New("vector index damaged")

const (
	formatName    = "ssp-vector"
	formatVersion = 1
	metricIP      = "inner_product"
	scalePerVec   = "per_vector"

	metaFile     = "meta.json"
	progressFile = "progress.json"
	vectorsFile  = "vectors.bin"
	scalesFile   = "scales.bin"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type fileInfo struct {
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

// meta is meta.json, the header of a finished index.
type meta struct {
	Format  string              `json:"format"`
	Version int                 `json:"version"`
	Dim     int                 `json:"dim"`
	Count   int64               `json:"count"`
	DType   DType               `json:"dtype"`
	Metric  string              `json:"metric"`
	Scale   string              `json:"scale,omitempty"`
	Files   map[string]fileInfo `json:"files"`
	Extra   json.RawMessage     `json:"extra,omitempty"`
}

// rowBytes is the size of one stored vector in vectors.bin.
func rowBytes(dt DType, dim int) int64 {
	if dt == Float16 {
		return 2 * int64(dim)
	}
	return int64(dim)
}

func checkDType(dt DType) error {
	if dt != Float16 && dt != Int8 {
		return fmt.Errorf("dtype %q: want %q or %q", dt, Float16, Int8)
	}
	return nil
}

// Index is an opened, read-only vector index; its files are memory-mapped.
// It is safe for concurrent use.
type Index struct {
	dir    string
	meta   meta
	maps   [][]byte
	vecs   []byte    // vectors.bin
	i8     []int8    // vecs as int8 (Int8 only)
	f16    []uint16  // vecs as float16 bits (Float16 only)
	scales []float32 // scales.bin (Int8 only)
	graph  *hnsw     // nil until BuildHNSW or when the directory has none
}

// IsIndex reports whether dir holds a finished vector index.
func IsIndex(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return false
	}
	var m meta
	return json.Unmarshal(data, &m) == nil && m.Format == formatName
}

// Open maps the index in dir and checks its header and the sizes of its
// files, and loads the HNSW graph when the directory has one. It does not
// read the files in full; use Verify for checksums.
func Open(dir string) (*Index, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, os.ErrNotExist) {
		if p, perr := readProgress(dir); perr == nil {
			return nil, fmt.Errorf("vector index %s: unfinished build (%d vectors written, no %s): continue it with Resume and Finish", dir, p.Count, metaFile)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("vector index %s: %w", dir, err)
	}
	ix := &Index{dir: dir}
	if err := json.Unmarshal(raw, &ix.meta); err != nil {
		return nil, fmt.Errorf("vector index %s: %s: %w: %v", dir, metaFile, ErrCorrupt, err)
	}
	m := &ix.meta
	if m.Format != formatName {
		return nil, fmt.Errorf("vector index %s: %s: format %q is not %q", dir, metaFile, m.Format, formatName)
	}
	if m.Version != formatVersion {
		return nil, fmt.Errorf("vector index %s: %s: format version %d, this program reads version %d", dir, metaFile, m.Version, formatVersion)
	}
	if err := checkDType(m.DType); err != nil {
		return nil, fmt.Errorf("vector index %s: %s: %w: %v", dir, metaFile, ErrCorrupt, err)
	}
	if m.Dim <= 0 || m.Count < 0 || m.Metric != metricIP {
		return nil, fmt.Errorf("vector index %s: %s: %w: bad dim, count or metric", dir, metaFile, ErrCorrupt)
	}
	files := []struct {
		name string
		dst  *[]byte
		size int64
	}{{vectorsFile, &ix.vecs, m.Count * rowBytes(m.DType, m.Dim)}}
	var scales []byte
	if m.DType == Int8 {
		files = append(files, struct {
			name string
			dst  *[]byte
			size int64
		}{scalesFile, &scales, 4 * m.Count})
	}
	for _, f := range files {
		fi, ok := m.Files[f.name]
		if !ok {
			ix.Close()
			return nil, fmt.Errorf("vector index %s: %s: %w: no entry for %s", dir, metaFile, ErrCorrupt, f.name)
		}
		if fi.Size != f.size {
			ix.Close()
			return nil, fmt.Errorf("vector index %s: %s: %w: recorded size %d, count %d and dim %d imply %d", dir, f.name, ErrCorrupt, fi.Size, m.Count, m.Dim, f.size)
		}
		data, err := mmapfile.Map(filepath.Join(dir, f.name), f.size, ErrCorrupt)
		if err != nil {
			ix.Close()
			return nil, fmt.Errorf("vector index %s: %w", dir, err)
		}
		if data != nil {
			ix.maps = append(ix.maps, data)
		}
		*f.dst = data
	}
	switch m.DType {
	case Int8:
		ix.i8 = bytesAsInt8(ix.vecs)
		ix.scales = bytesAsFloat32(scales)
	case Float16:
		ix.f16 = bytesAsUint16(ix.vecs)
	}
	if err := ix.loadHNSW(); err != nil {
		ix.Close()
		return nil, fmt.Errorf("vector index %s: %w", dir, err)
	}
	return ix, nil
}

// Verify recomputes the checksum of every index file, the HNSW graph's
// included, compares them with the headers, and checks that every scale is
// finite.
func (ix *Index) Verify() error {
	check := map[string][]byte{vectorsFile: ix.vecs}
	if ix.meta.DType == Int8 {
		check[scalesFile] = float32sAsBytes(ix.scales)
	}
	for name, data := range check {
		if got, want := crc32.Checksum(data, castagnoli), ix.meta.Files[name].CRC32C; got != want {
			return fmt.Errorf("vector index %s: %s: %w: checksum %08x, header records %08x", ix.dir, name, ErrCorrupt, got, want)
		}
	}
	for i, s := range ix.scales {
		if s < 0 || math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("vector index %s: %s: %w: bad scale %v for vector %d", ix.dir, scalesFile, ErrCorrupt, s, i)
		}
	}
	if ix.graph != nil {
		if err := ix.graph.verify(); err != nil {
			return fmt.Errorf("vector index %s: %w", ix.dir, err)
		}
	}
	return nil
}

// Close unmaps the index files. The Index must not be used afterwards.
func (ix *Index) Close() error {
	var first error
	if ix.graph != nil {
		first = ix.graph.close()
		ix.graph = nil
	}
	for _, m := range ix.maps {
		if err := syscall.Munmap(m); err != nil && first == nil {
			first = fmt.Errorf("vector index %s: munmap: %w", ix.dir, err)
		}
	}
	ix.maps = nil
	return first
}

// Len returns the number of vectors.
func (ix *Index) Len() int { return int(ix.meta.Count) }

// Dim returns the vector dimension.
func (ix *Index) Dim() int { return ix.meta.Dim }

// DType returns the storage type.
func (ix *Index) DType() DType { return ix.meta.DType }

// Extra returns the opaque JSON given to Finish (encoder information).
func (ix *Index) Extra() json.RawMessage { return ix.meta.Extra }

// Dir returns the index directory.
func (ix *Index) Dir() string { return ix.dir }

// Vector returns vector i dequantised, as search scores see it.
func (ix *Index) Vector(i int) []float32 {
	out := make([]float32, ix.meta.Dim)
	ix.decode(i, out)
	return out
}

func (ix *Index) decode(i int, out []float32) {
	d := ix.meta.Dim
	switch ix.meta.DType {
	case Int8:
		s := ix.scales[i]
		for j, v := range ix.i8[i*d : (i+1)*d] {
			out[j] = float32(v) * s
		}
	case Float16:
		for j, v := range ix.f16[i*d : (i+1)*d] {
			out[j] = halfToFloat(v)
		}
	}
}

// checkQueries rejects queries whose dimension differs from the index's.
func (ix *Index) checkQueries(queries [][]float32, k int) error {
	if k <= 0 {
		return fmt.Errorf("vector index %s: k = %d, want > 0", ix.dir, k)
	}
	for i, q := range queries {
		if len(q) != ix.meta.Dim {
			return fmt.Errorf("vector index %s: query %d has dimension %d, the index has dimension %d", ix.dir, i, len(q), ix.meta.Dim)
		}
	}
	return nil
}
