package vector

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// chunkBytes is how much vector data the Writer buffers before it makes a
// chunk durable (write, fsync, progress record). Larger chunks cost less
// fsync time; a crash loses at most one chunk.
var chunkBytes int64 = 8 << 20

// progress is progress.json: how many rows of an unfinished build are
// durable. Rows past Count in the data files are from a chunk that was being
// written when the process stopped, and Resume cuts them off.
type progress struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Dim     int    `json:"dim"`
	DType   DType  `json:"dtype"`
	Count   int64  `json:"count"`
}

// Writer appends vectors to a new index directory. It is not safe for
// concurrent use.
type Writer struct {
	dir     string
	dim     int
	dtype   DType
	vf, sf  *os.File // vectors.bin, scales.bin (nil for float16)
	bufV    []byte
	bufS    []byte
	pending int64 // rows in bufV
	durable int64 // rows fsynced and recorded in progress.json
	chunk   int64 // rows per chunk
	qi8     []int8
	qf16    []uint16
	done    bool
}

// Create starts a new index in dir (created if needed), which must not hold
// an index or a partial build already.
func Create(dir string, dim int, dtype DType) (*Writer, error) {
	if dim <= 0 {
		return nil, fmt.Errorf("vector index %s: dimension %d, want > 0", dir, dim)
	}
	if err := checkDType(dtype); err != nil {
		return nil, fmt.Errorf("vector index %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vector index %s: %w", dir, err)
	}
	if IsIndex(dir) {
		return nil, fmt.Errorf("vector index %s: already holds a finished index", dir)
	}
	if _, err := readProgress(dir); err == nil {
		return nil, fmt.Errorf("vector index %s: holds a partial build; continue it with Resume", dir)
	}
	w := newWriter(dir, dim, dtype)
	var err error
	if w.vf, err = os.OpenFile(filepath.Join(dir, vectorsFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
		return nil, fmt.Errorf("vector index %s: %w", dir, err)
	}
	if dtype == Int8 {
		if w.sf, err = os.OpenFile(filepath.Join(dir, scalesFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			w.closeFiles()
			return nil, fmt.Errorf("vector index %s: %w", dir, err)
		}
	}
	if err := w.writeProgress(); err != nil {
		w.closeFiles()
		return nil, err
	}
	return w, nil
}

func newWriter(dir string, dim int, dtype DType) *Writer {
	chunk := max(1, chunkBytes/rowBytes(dtype, dim))
	return &Writer{dir: dir, dim: dim, dtype: dtype, chunk: chunk,
		qi8: make([]int8, dim), qf16: make([]uint16, dim)}
}

// Resume reopens a partial build left by Close or by a killed process and
// returns how many vectors are durably written; the caller continues with
// Add from that vector on. Rows of a chunk that was not completed are
// discarded.
func Resume(dir string) (*Writer, int, error) {
	if IsIndex(dir) {
		return nil, 0, fmt.Errorf("vector index %s: already finished, nothing to resume", dir)
	}
	p, err := readProgress(dir)
	if err != nil {
		return nil, 0, err
	}
	if p.Dim <= 0 || p.Count < 0 || checkDType(p.DType) != nil {
		return nil, 0, fmt.Errorf("vector index %s: %s: %w: bad dim, dtype or count", dir, progressFile, ErrCorrupt)
	}
	w := newWriter(dir, p.Dim, p.DType)
	w.durable = p.Count
	if w.vf, err = openAt(filepath.Join(dir, vectorsFile), p.Count*rowBytes(p.DType, p.Dim)); err != nil {
		return nil, 0, fmt.Errorf("vector index %s: %w", dir, err)
	}
	if p.DType == Int8 {
		if w.sf, err = openAt(filepath.Join(dir, scalesFile), 4*p.Count); err != nil {
			w.closeFiles()
			return nil, 0, fmt.Errorf("vector index %s: %w", dir, err)
		}
	}
	return w, int(p.Count), nil
}

// openAt opens a data file of a partial build, cuts it to size (the durable
// part) and positions it there for appending.
func openAt(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && st.Size() < size {
		err = fmt.Errorf("%s: %w: size %d bytes, %s records %d durable", filepath.Base(path), ErrCorrupt, st.Size(), progressFile, size)
	}
	if err == nil {
		err = f.Truncate(size)
	}
	if err == nil {
		_, err = f.Seek(size, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func readProgress(dir string) (progress, error) {
	var p progress
	raw, err := os.ReadFile(filepath.Join(dir, progressFile))
	if err != nil {
		return p, fmt.Errorf("vector index %s: no partial build: %w", dir, err)
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.Format != formatName {
		return p, fmt.Errorf("vector index %s: %s: %w: not a progress record", dir, progressFile, ErrCorrupt)
	}
	if p.Version != formatVersion {
		return p, fmt.Errorf("vector index %s: %s: format version %d, this program writes version %d", dir, progressFile, p.Version, formatVersion)
	}
	return p, nil
}

func (w *Writer) writeProgress() error {
	data, _ := json.Marshal(progress{Format: formatName, Version: formatVersion, Dim: w.dim, DType: w.dtype, Count: w.durable})
	return writeFileAtomic(filepath.Join(w.dir, progressFile), data)
}

// Add appends vectors. They are validated as a whole first, so a rejected
// call writes nothing.
func (w *Writer) Add(vectors [][]float32) error {
	if w.done || w.vf == nil {
		return fmt.Errorf("vector index %s: Add after Finish or Close", w.dir)
	}
	for i, v := range vectors {
		if len(v) != w.dim {
			return fmt.Errorf("vector index %s: vector %d of this batch has dimension %d, the index has dimension %d", w.dir, i, len(v), w.dim)
		}
		if !finite(v) {
			return fmt.Errorf("vector index %s: vector %d of this batch has a NaN or infinite component", w.dir, i)
		}
	}
	for _, v := range vectors {
		switch w.dtype {
		case Int8:
			s := quantizeInt8(v, w.qi8)
			w.bufV = append(w.bufV, int8sAsBytes(w.qi8)...)
			w.bufS = append(w.bufS, float32sAsBytes([]float32{s})...)
		case Float16:
			for j, x := range v {
				w.qf16[j] = floatToHalf(x)
			}
			w.bufV = append(w.bufV, uint16sAsBytes(w.qf16)...)
		}
		w.pending++
		if w.pending >= w.chunk {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush makes the buffered rows durable: data first, fsynced, then the
// progress record that counts them. A crash in between leaves rows past the
// recorded count, which Resume discards.
func (w *Writer) flush() error {
	if w.pending == 0 {
		return nil
	}
	if _, err := w.vf.Write(w.bufV); err != nil {
		return fmt.Errorf("vector index %s: write %s: %w", w.dir, vectorsFile, err)
	}
	if w.sf != nil {
		if _, err := w.sf.Write(w.bufS); err != nil {
			return fmt.Errorf("vector index %s: write %s: %w", w.dir, scalesFile, err)
		}
		if err := w.sf.Sync(); err != nil {
			return fmt.Errorf("vector index %s: sync %s: %w", w.dir, scalesFile, err)
		}
	}
	if err := w.vf.Sync(); err != nil {
		return fmt.Errorf("vector index %s: sync %s: %w", w.dir, vectorsFile, err)
	}
	w.durable += w.pending
	w.pending = 0
	w.bufV, w.bufS = w.bufV[:0], w.bufS[:0]
	return w.writeProgress()
}

// Count returns how many vectors have been added, durable or buffered.
func (w *Writer) Count() int { return int(w.durable + w.pending) }

// Finish makes every vector durable, writes meta.json (with checksums of the
// data files and extra, opaque JSON such as encoder information) atomically,
// and removes the progress record; the directory then opens with Open.
func (w *Writer) Finish(extra json.RawMessage) error {
	if w.done || w.vf == nil {
		return fmt.Errorf("vector index %s: Finish after Finish or Close", w.dir)
	}
	if len(extra) > 0 && !json.Valid(extra) {
		return fmt.Errorf("vector index %s: extra is not valid JSON", w.dir)
	}
	if err := w.flush(); err != nil {
		return err
	}
	m := meta{Format: formatName, Version: formatVersion, Dim: w.dim, Count: w.durable, DType: w.dtype,
		Metric: metricIP, Files: map[string]fileInfo{}, Extra: extra}
	if w.dtype == Int8 {
		m.Scale = scalePerVec
	}
	for name, f := range map[string]*os.File{vectorsFile: w.vf, scalesFile: w.sf} {
		if f == nil {
			continue
		}
		fi, err := checksumFile(f)
		if err != nil {
			return fmt.Errorf("vector index %s: %s: %w", w.dir, name, err)
		}
		m.Files[name] = fi
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(w.dir, metaFile), data); err != nil {
		return err
	}
	w.done = true
	w.closeFiles()
	if err := os.Remove(filepath.Join(w.dir, progressFile)); err != nil {
		return fmt.Errorf("vector index %s: %w", w.dir, err)
	}
	return syncDir(w.dir)
}

func checksumFile(f *os.File) (fileInfo, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fileInfo{}, err
	}
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, f)
	return fileInfo{Size: n, CRC32C: h.Sum32()}, err
}

// Close ends the Writer. Without Finish it makes the buffered vectors
// durable and leaves a partial build that Resume continues.
func (w *Writer) Close() error {
	if w.done || w.vf == nil {
		return nil
	}
	err := w.flush()
	w.closeFiles()
	return err
}

func (w *Writer) closeFiles() {
	for _, f := range []*os.File{w.vf, w.sf} {
		if f != nil {
			f.Close()
		}
	}
	w.vf, w.sf = nil, nil
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename, then syncs the directory, so path holds either the old or the new
// content.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
