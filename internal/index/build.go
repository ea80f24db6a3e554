package index

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/search"
)

// Options configure an index build. The scoring and analysis fields are
// stored in the index metadata and apply to every query of the index.
type Options struct {
	K1       float64  // BM25 term-frequency saturation; Pyserini's default is 0.9
	B        float64  // BM25 length normalisation; Pyserini's default is 0.4
	Analyzer Analyzer // how text becomes terms

	// Progress, when not nil, receives a progress line every few seconds.
	Progress io.Writer
	// Fraction, when not nil, reports how much of the input has been read
	// (0..1) so that progress lines can show an ETA.
	Fraction func() float64
	// Force replaces an existing directory at the output path that is not
	// an index (never a file).
	Force bool
}

// DefaultOptions returns Pyserini's BM25 defaults.
func DefaultOptions() Options {
	return Options{K1: 0.9, B: 0.4, Analyzer: DefaultAnalyzer()}
}

// Stats summarise a finished build.
type Stats struct {
	NumDocs  int
	NumTerms int
	Bytes    int64
	Duration time.Duration
}

// blockSize is the number of postings per block; each block carries the
// largest score any of its postings can reach, for dynamic pruning.
const blockSize = 128

// surfaceCacheMax bounds the token cache of a build (entries).
const surfaceCacheMax = 4 << 20

// File names inside an index directory.
const (
	metaFile     = "meta.json"
	docsFile     = "docs.bin"
	docOffsFile  = "docs.off"
	normsFile    = "norms.bin"
	termsFile    = "terms.bin"
	termStrsFile = "terms.str"
	blocksFile   = "blocks.bin"
	postingsFile = "postings.bin"
)

const (
	formatName     = "ssp-bm25"
	formatVersion  = 1
	termRecordSize = 24 // strOff u64, strLen u32, df u32, firstBlock u64
	blockRecSize   = 16 // lastDoc u32, maxScore f32, postOff u64
)

// fileInfo is the size and CRC-32C of one index file.
type fileInfo struct {
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

// meta is the content of meta.json.
type meta struct {
	Format           string              `json:"format"`
	Version          int                 `json:"version"`
	K1               float64             `json:"k1"`
	B                float64             `json:"b"`
	Analyzer         Analyzer            `json:"analyzer"`
	LengthEncoding   string              `json:"length_encoding"`
	BlockSize        int                 `json:"block_size"`
	NumDocs          int64               `json:"num_docs"`
	NumTerms         int64               `json:"num_terms"`
	NumBlocks        int64               `json:"num_blocks"`
	SumTotalTermFreq int64               `json:"sum_total_term_freq"`
	Created          time.Time           `json:"created"`
	Files            map[string]fileInfo `json:"files"`
}

// termPostings accumulates one term's postings while building, as varint
// pairs (doc delta, tf), which keeps memory close to the final index size.
type termPostings struct {
	data    []byte
	lastDoc uint32
	df      uint32
}

// checkedWriter is a buffered file writer that tracks size and CRC-32C.
type checkedWriter struct {
	f    *os.File
	w    *bufio.Writer
	crc  uint32
	size int64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func createChecked(path string) (*checkedWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &checkedWriter{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, castagnoli, p)
	c.size += int64(len(p))
	return c.w.Write(p)
}

func (c *checkedWriter) close() (fileInfo, error) {
	err := c.w.Flush()
	if err == nil {
		err = c.f.Sync()
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fileInfo{}, fmt.Errorf("write %s: %w", c.f.Name(), err)
	}
	return fileInfo{Size: c.size, CRC32C: c.crc}, nil
}

// Build reads every document of docs and writes a BM25 index to outDir.
// Documents are streamed to the document store as they arrive; postings are
// kept in memory in compressed form. The index is assembled in a temporary
// directory beside outDir and renamed into place at the end, so an
// interrupted or failed build never leaves a partial index, and an existing
// index at outDir is replaced only once the new one is complete. A file, or
// a directory that is not an index, is refused (package outdir); so is a
// corpus without documents.
func Build(ctx context.Context, docs iter.Seq2[search.Document, error], outDir string, opts Options) (Stats, error) {
	start := time.Now()
	if opts.K1 < 0 || math.IsNaN(opts.K1) || math.IsInf(opts.K1, 0) {
		return Stats{}, fmt.Errorf("index build: k1 must be a finite number >= 0, got %v", opts.K1)
	}
	if opts.B < 0 || opts.B > 1 || math.IsNaN(opts.B) {
		return Stats{}, fmt.Errorf("index build: b must be in [0, 1], got %v", opts.B)
	}
	outDir = filepath.Clean(outDir)
	var m *meta
	err := outdir.Write(outDir, outdir.Index, outdir.Options{Force: opts.Force, ForceFlag: "--force", Legacy: IsIndex}, func(tmp string) error {
		var err error
		if m, err = buildInto(ctx, docs, tmp, opts, start); err != nil {
			return fmt.Errorf("index %s: %w", outDir, err)
		}
		if m.NumDocs == 0 {
			return fmt.Errorf("index %s: the corpus has no documents; nothing was written", outDir)
		}
		return nil
	})
	if err != nil {
		return Stats{}, err
	}
	var total int64
	for _, fi := range m.Files {
		total += fi.Size
	}
	return Stats{NumDocs: int(m.NumDocs), NumTerms: int(m.NumTerms), Bytes: total, Duration: time.Since(start)}, nil
}

// IsIndex reports whether dir holds an index's meta.json (an index written
// before output directories were marked).
func IsIndex(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return false
	}
	var m meta
	return json.Unmarshal(data, &m) == nil && m.Format == formatName
}

func buildInto(ctx context.Context, docs iter.Seq2[search.Document, error], dir string, opts Options, start time.Time) (*meta, error) {
	docsW, err := createChecked(filepath.Join(dir, docsFile))
	if err != nil {
		return nil, err
	}
	defer docsW.f.Close()
	var (
		offsets  = []uint64{0}
		norms    []byte
		dict     = map[string]uint32{}
		postings []termPostings
		sumTTF   int64
		scratch  []byte
		lastLog  = time.Now()
		// surface maps a token as it appears in text to its term number,
		// or -1 when the analyzer drops it; word frequencies are Zipfian, so
		// this one lookup replaces case folding, stopword test, stemming and
		// the dictionary lookup for nearly every token.
		surface = map[string]int32{}
		tf      []uint32 // per term number: count in the current document
		touched []uint32 // term numbers seen in the current document
		docLen  int
	)
	termOf := func(term string) uint32 {
		id, ok := dict[term]
		if !ok {
			id = uint32(len(postings))
			dict[term] = id
			postings = append(postings, termPostings{})
			tf = append(tf, 0)
		}
		return id
	}
	addToken := func(tok string) {
		id, ok := surface[tok]
		if !ok {
			id = -1
			if term, keep := opts.Analyzer.normalize(tok, porterStem); keep {
				id = int32(termOf(term))
			}
			if len(surface) < surfaceCacheMax {
				surface[strings.Clone(tok)] = id
			}
		}
		if id < 0 {
			return
		}
		docLen++
		if tf[id] == 0 {
			touched = append(touched, uint32(id))
		}
		tf[id]++
	}
	for doc, err := range docs {
		if err != nil {
			return nil, err
		}
		docID := uint32(len(norms))
		if len(norms) == math.MaxUint32-1 {
			return nil, errors.New("too many documents (limit 2^32-2)")
		}
		if docID%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if opts.Progress != nil && time.Since(lastLog) > 3*time.Second {
				lastLog = time.Now()
				logProgress(opts, len(norms), start)
			}
		}
		scratch = binary.AppendUvarint(scratch[:0], uint64(len(doc.ID)))
		scratch = append(scratch, doc.ID...)
		scratch = append(scratch, doc.Contents...)
		if _, err := docsW.Write(scratch); err != nil {
			return nil, fmt.Errorf("write %s: %w", docsFile, err)
		}
		offsets = append(offsets, uint64(docsW.size))

		docLen, touched = 0, touched[:0]
		tokenize(doc.Contents, addToken)
		norms = append(norms, lengthToNorm(docLen))
		sumTTF += int64(docLen)
		for _, id := range touched {
			n := tf[id]
			tf[id] = 0
			p := &postings[id]
			delta := docID - p.lastDoc
			if p.df == 0 {
				delta = docID
			}
			p.data = binary.AppendUvarint(p.data, uint64(delta))
			p.data = binary.AppendUvarint(p.data, uint64(n))
			p.lastDoc = docID
			p.df++
		}
	}
	if opts.Progress != nil {
		logProgress(opts, len(norms), start)
	}
	m := &meta{
		Format: formatName, Version: formatVersion, K1: opts.K1, B: opts.B, Analyzer: opts.Analyzer,
		LengthEncoding: "lucene-smallfloat-byte4", BlockSize: blockSize,
		NumDocs: int64(len(norms)), NumTerms: int64(len(dict)), SumTotalTermFreq: sumTTF,
		Created: time.Now().UTC().Truncate(time.Second), Files: map[string]fileInfo{},
	}
	fi, err := docsW.close()
	if err != nil {
		return nil, err
	}
	m.Files[docsFile] = fi

	if m.Files[docOffsFile], err = writeFile(dir, docOffsFile, func(w io.Writer) error {
		buf := make([]byte, 0, 8*4096)
		for i, off := range offsets {
			buf = binary.LittleEndian.AppendUint64(buf, off)
			if len(buf) == cap(buf) || i == len(offsets)-1 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	offsets = nil
	if m.Files[normsFile], err = writeFile(dir, normsFile, func(w io.Writer) error {
		_, err := w.Write(norms)
		return err
	}); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := writePostings(ctx, dir, m, dict, postings, norms); err != nil {
		return nil, err
	}
	if err := writeMeta(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}

func logProgress(opts Options, n int, start time.Time) {
	el := time.Since(start).Seconds()
	rate := float64(n) / max(el, 1e-9)
	line := fmt.Sprintf("index build: %d docs, %.0f docs/s, %s elapsed", n, rate, time.Duration(el*float64(time.Second)).Truncate(time.Second))
	if opts.Fraction != nil {
		if f := opts.Fraction(); f > 0.001 && f <= 1 {
			eta := time.Duration(el * (1 - f) / f * float64(time.Second)).Truncate(time.Second)
			line += fmt.Sprintf(", %.1f%% read, ETA %s", 100*f, eta)
		}
	}
	fmt.Fprintln(opts.Progress, line)
}

func writeFile(dir, name string, fill func(io.Writer) error) (fileInfo, error) {
	w, err := createChecked(filepath.Join(dir, name))
	if err != nil {
		return fileInfo{}, err
	}
	if err := fill(w); err != nil {
		w.f.Close()
		return fileInfo{}, fmt.Errorf("write %s: %w", name, err)
	}
	return w.close()
}

func writeMeta(dir string, m *meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, metaFile), append(b, '\n'), 0o644)
}

// writePostings writes the term dictionary in sorted order, each posting list
// cut into blocks with their maximal score, and frees the in-memory postings
// term by term.
func writePostings(ctx context.Context, dir string, m *meta, dict map[string]uint32, postings []termPostings, norms []byte) error {
	sorted := make([]string, 0, len(dict))
	for t := range dict {
		sorted = append(sorted, t)
	}
	slices.Sort(sorted)
	sc := newScorer(m.K1, m.B, m.NumDocs, m.SumTotalTermFreq)

	termsW, err := createChecked(filepath.Join(dir, termsFile))
	if err != nil {
		return err
	}
	defer termsW.f.Close()
	strsW, err := createChecked(filepath.Join(dir, termStrsFile))
	if err != nil {
		return err
	}
	defer strsW.f.Close()
	blocksW, err := createChecked(filepath.Join(dir, blocksFile))
	if err != nil {
		return err
	}
	defer blocksW.f.Close()
	postW, err := createChecked(filepath.Join(dir, postingsFile))
	if err != nil {
		return err
	}
	defer postW.f.Close()

	var (
		rec       [termRecordSize]byte
		brec      [blockRecSize]byte
		docs      = make([]uint32, 0, blockSize)
		tfs       = make([]uint32, 0, blockSize)
		enc       []byte
		numBlocks int64
	)
	for i, t := range sorted {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		p := &postings[dict[t]]
		binary.LittleEndian.PutUint64(rec[0:], uint64(strsW.size))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(t)))
		binary.LittleEndian.PutUint32(rec[12:], p.df)
		binary.LittleEndian.PutUint64(rec[16:], uint64(numBlocks))
		if _, err := termsW.Write(rec[:]); err != nil {
			return err
		}
		if _, err := io.WriteString(strsW, t); err != nil {
			return err
		}
		idf := sc.idf(int64(p.df))
		data := p.data
		var doc, prevBlockLast uint32
		first := true
		for remaining := int(p.df); remaining > 0; {
			n := min(remaining, blockSize)
			remaining -= n
			docs, tfs = docs[:0], tfs[:0]
			var maxScore float32
			for range n {
				d, k := binary.Uvarint(data)
				data = data[k:]
				f, k := binary.Uvarint(data)
				data = data[k:]
				if first {
					doc, first = uint32(d), false
				} else {
					doc += uint32(d)
				}
				docs = append(docs, doc)
				tfs = append(tfs, uint32(f))
				maxScore = max(maxScore, sc.score(idf, uint32(f), norms[doc]))
			}
			enc = encodeBlock(enc[:0], docs, tfs, prevBlockLast)
			prevBlockLast = doc
			binary.LittleEndian.PutUint32(brec[0:], doc)
			binary.LittleEndian.PutUint32(brec[4:], math.Float32bits(maxScore))
			binary.LittleEndian.PutUint64(brec[8:], uint64(postW.size))
			if _, err := blocksW.Write(brec[:]); err != nil {
				return err
			}
			if _, err := postW.Write(enc); err != nil {
				return err
			}
			numBlocks++
		}
		p.data = nil
	}
	m.NumBlocks = numBlocks
	for name, w := range map[string]*checkedWriter{termsFile: termsW, termStrsFile: strsW, blocksFile: blocksW, postingsFile: postW} {
		fi, err := w.close()
		if err != nil {
			return err
		}
		m.Files[name] = fi
	}
	return nil
}

// encodeBlock appends a block's postings: doc gaps (the first one relative
// to the last doc of the previous block, or absolute in the first block) and
// term frequencies, all as uvarints.
func encodeBlock(dst []byte, docs, tfs []uint32, prev uint32) []byte {
	for i, d := range docs {
		dst = binary.AppendUvarint(dst, uint64(d-prev))
		dst = binary.AppendUvarint(dst, uint64(tfs[i]))
		prev = d
	}
	return dst
}
