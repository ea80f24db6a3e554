// Package dense adds embedding retrieval to an ssp index. The index's
// documents are encoded by a sentence encoder (package encoder) into a
// vector index (package vector) kept in the index directory under dense/;
// the encoding is resumable, since a large corpus takes hours on a CPU.
// Queries are encoded with the same encoder and answered from the vectors
// (exactly, or through the HNSW graph when one was built), alone or fused
// with BM25 (search.Hybrid). Document i of the index is vector i.
package dense

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ssp-project/ssp/internal/encoder"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/vector"
)

// Subdir is where an index keeps its vectors.
const Subdir = "dense"

// Rankings are the ranking modes of a search over an index.
var Rankings = []string{"bm25", "dense", "hybrid"}

// RankingHelp describes the ranking modes for flag help.
const RankingHelp = "ranking over the index: bm25 (the inverted index), dense (the vectors in its dense/ folder, made by ssp index build --encoder), or hybrid (both, fused)"

// Provenance is what a vector index records about how it was made, in the
// vector meta's extra field and, while it is being built, in build.json.
type Provenance struct {
	// Encoder is the absolute path of the encoder directory at build time,
	// the default query encoder of the searches.
	Encoder string `json:"encoder"`
	// EncoderName and EncoderDim identify the encoder: a search with
	// another encoder is refused.
	EncoderName string       `json:"encoder_name"`
	EncoderDim  int          `json:"encoder_dim"`
	EncoderInfo encoder.Info `json:"encoder_info"`
	// Docs and DocsChecksum identify the index's document store.
	Docs         int    `json:"docs"`
	DocsChecksum uint32 `json:"docs_crc32c"`
}

const provenanceFile = "build.json"

// BuildOptions configure the encoding of an index's documents.
type BuildOptions struct {
	Encoder string // encoder directory (required)
	// EncoderOptions are the encoder's backend and any overrides of its
	// pooling, normalisation, prefixes and length; the settings used are
	// recorded with the vectors, and queries are encoded with the same.
	EncoderOptions encoder.Options
	DType          vector.DType // stored precision (default int8)
	BatchSize      int          // documents per Add, and so per durable chunk (default 256)
	// HNSW, when set, builds the approximate-search graph after encoding.
	HNSW        bool
	HNSWOptions vector.HNSWOptions
	// Progress, when not nil, receives a progress line every few seconds.
	Progress io.Writer
	// Force re-encodes even when finished vectors of the same encoder exist.
	Force bool
	// OnChunk, when not nil, is called after each durable chunk with the
	// number of documents encoded so far.
	OnChunk func(done int)
}

// BuildStats summarise an encoding run.
type BuildStats struct {
	Docs     int           // documents in the index
	Resumed  int           // documents already encoded when the run began
	Encoded  int           // documents encoded by this run
	Duration time.Duration // of the encoding
	Dir      string        // the vector directory
	HNSW     bool          // whether the index now has its graph
}

// Dir returns the vector directory of an index directory.
func Dir(indexDir string) string { return filepath.Join(indexDir, Subdir) }

// Build encodes the documents of the index at indexDir into Dir(indexDir).
// An unfinished encoding by the same encoder is continued from its last
// durable chunk; one by another encoder, or of another document store, is
// refused (Force starts over). Finished vectors of the same encoder are
// kept (Force re-encodes), and only the graph is built if asked for.
func Build(ctx context.Context, indexDir string, opts BuildOptions) (BuildStats, error) {
	if opts.Encoder == "" {
		return BuildStats{}, errors.New("dense build: no encoder directory given")
	}
	if opts.DType == "" {
		opts.DType = vector.Int8
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	ix, err := index.Open(indexDir)
	if err != nil {
		return BuildStats{}, err
	}
	defer ix.Close()
	enc, err := encoder.Open(opts.Encoder, opts.EncoderOptions)
	if err != nil {
		return BuildStats{}, err
	}
	abs, err := filepath.Abs(opts.Encoder)
	if err != nil {
		return BuildStats{}, err
	}
	want := Provenance{
		Encoder: abs, EncoderName: enc.Name(), EncoderDim: enc.Dim(), EncoderInfo: enc.Info(),
		Docs: ix.NumDocs(), DocsChecksum: ix.DocsChecksum(),
	}
	dir := Dir(indexDir)
	stats := BuildStats{Docs: ix.NumDocs(), Dir: dir}

	if vector.IsIndex(dir) && !opts.Force {
		vix, err := vector.Open(dir)
		if err == nil {
			var got Provenance
			_ = json.Unmarshal(vix.Extra(), &got)
			if sameSource(got, want) {
				stats.Resumed = vix.Len()
				if opts.HNSW && !vix.HasHNSW() {
					err = vix.BuildHNSW(opts.HNSWOptions, opts.Progress)
				}
				stats.HNSW = vix.HasHNSW()
				vix.Close()
				return stats, err
			}
			vix.Close()
			return stats, fmt.Errorf("%s holds vectors of encoder %q for %d documents (crc %08x); this build is encoder %q for %d documents (crc %08x): give --force to replace them",
				dir, got.EncoderName, got.Docs, got.DocsChecksum, want.EncoderName, want.Docs, want.DocsChecksum)
		}
		// A finished index that no longer opens is damaged: start over.
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "%s does not open (%v): encoding again\n", dir, err)
		}
		opts.Force = true
	}

	w, done, err := openWriter(dir, want, enc.Dim(), opts)
	if err != nil {
		return stats, err
	}
	defer w.Close()
	stats.Resumed = done
	start := time.Now()
	lastLog := start
	texts := make([]string, 0, opts.BatchSize)
	for next := done; next < ix.NumDocs(); {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		texts = texts[:0]
		for ; next < ix.NumDocs() && len(texts) < opts.BatchSize; next++ {
			d, err := ix.Document(next)
			if err != nil {
				return stats, err
			}
			texts = append(texts, d.Contents)
		}
		vecs, err := enc.EncodePassages(ctx, texts)
		if err != nil {
			return stats, fmt.Errorf("encode documents %d-%d: %w", next-len(texts), next-1, err)
		}
		if err := w.Add(vecs); err != nil {
			return stats, err
		}
		stats.Encoded += len(texts)
		if opts.OnChunk != nil {
			opts.OnChunk(next)
		}
		if opts.Progress != nil && (time.Since(lastLog) > 5*time.Second || next == ix.NumDocs()) {
			lastLog = time.Now()
			logProgress(opts.Progress, next, ix.NumDocs(), stats.Encoded, time.Since(start))
		}
	}
	extra, err := json.Marshal(want)
	if err != nil {
		return stats, err
	}
	if err := w.Finish(extra); err != nil {
		return stats, err
	}
	stats.Duration = time.Since(start)
	_ = os.Remove(filepath.Join(dir, provenanceFile))
	if opts.HNSW {
		vix, err := vector.Open(dir)
		if err != nil {
			return stats, err
		}
		defer vix.Close()
		if err := vix.BuildHNSW(opts.HNSWOptions, opts.Progress); err != nil {
			return stats, err
		}
		stats.HNSW = true
	}
	return stats, nil
}

// openWriter continues an unfinished build of the same source or starts a
// new one, and records the source in build.json so that a later resume can
// check it.
func openWriter(dir string, want Provenance, dim int, opts BuildOptions) (*vector.Writer, int, error) {
	if !opts.Force {
		if raw, err := os.ReadFile(filepath.Join(dir, provenanceFile)); err == nil {
			var got Provenance
			if err := json.Unmarshal(raw, &got); err != nil {
				return nil, 0, fmt.Errorf("%s: %v: give --force to start the encoding over", filepath.Join(dir, provenanceFile), err)
			}
			if !sameSource(got, want) {
				return nil, 0, fmt.Errorf("%s is an unfinished encoding by encoder %q of %d documents; this build is encoder %q of %d documents: give --force to start over",
					dir, got.EncoderName, got.Docs, want.EncoderName, want.Docs)
			}
			w, done, err := vector.Resume(dir)
			if err == nil {
				if w.DType() != opts.DType {
					w.Close()
					return nil, 0, fmt.Errorf("%s is an unfinished encoding stored as %s, not %s: give the same --vector-dtype, or --force to start over", dir, w.DType(), opts.DType)
				}
				if opts.Progress != nil {
					fmt.Fprintf(opts.Progress, "continuing the encoding in %s at document %d of %d\n", dir, done, want.Docs)
				}
				return w, done, nil
			}
			if opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "%s: cannot continue (%v): starting over\n", dir, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, 0, err
	}
	w, err := vector.Create(dir, dim, opts.DType)
	if err != nil {
		return nil, 0, err
	}
	raw, _ := json.MarshalIndent(want, "", "  ")
	if err := outdir.WriteFile(filepath.Join(dir, provenanceFile), func(w io.Writer) error {
		_, err := w.Write(raw)
		return err
	}); err != nil {
		w.Close()
		return nil, 0, err
	}
	return w, 0, nil
}

func sameSource(a, b Provenance) bool {
	return a.EncoderName == b.EncoderName && a.EncoderDim == b.EncoderDim && a.Docs == b.Docs && a.DocsChecksum == b.DocsChecksum
}

func logProgress(w io.Writer, done, total, encoded int, elapsed time.Duration) {
	rate := float64(encoded) / max(elapsed.Seconds(), 1e-9)
	eta := "-"
	if rate > 0 {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Truncate(time.Second).String()
	}
	fmt.Fprintf(w, "encoded %d/%d documents (%.1f%%), %.1f docs/s, ETA %s\n", done, total, 100*float64(done)/float64(max(total, 1)), rate, eta)
}

// Options configure a dense search.
type Options struct {
	// Encoder is the query encoder directory; empty means the one the
	// vectors were made with.
	Encoder string
	Backend string
	// Search is "exact", "hnsw", or "" for hnsw when the index has a graph.
	Search string
	// EfSearch is the HNSW candidate list size (0: the package default).
	EfSearch int
}

// Searcher answers queries from an index's vectors.
type Searcher struct {
	ix     *index.Index
	vec    *vector.Index
	enc    *encoder.Encoder
	approx bool
	ef     int
}

// DefaultEfSearch is the HNSW candidate list size when none is given.
const DefaultEfSearch = 64

// Open opens the vectors of the index ix (which the Searcher uses for the
// documents and does not close) and their query encoder.
func Open(ix *index.Index, opts Options) (*Searcher, error) {
	dir := Dir(ix.Dir())
	if !vector.IsIndex(dir) {
		if _, err := os.Stat(filepath.Join(dir, provenanceFile)); err == nil {
			return nil, fmt.Errorf("index %s: the encoding of its documents into %s is unfinished: run ssp index build --index %s --encoder DIR again to continue it", ix.Dir(), dir, ix.Dir())
		}
		return nil, fmt.Errorf("index %s has no dense vectors (%s): make them with ssp index build --index %s --encoder DIR", ix.Dir(), dir, ix.Dir())
	}
	vec, err := vector.Open(dir)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Searcher, error) {
		vec.Close()
		return nil, err
	}
	var prov Provenance
	if err := json.Unmarshal(vec.Extra(), &prov); err != nil {
		return fail(fmt.Errorf("%s: meta extra: %w", dir, err))
	}
	if vec.Len() != ix.NumDocs() || prov.DocsChecksum != ix.DocsChecksum() {
		return fail(fmt.Errorf("%s: the vectors were made for another build of the index (%d documents, crc %08x; the index has %d, crc %08x): encode again with ssp index build --index %s --encoder DIR --force",
			dir, vec.Len(), prov.DocsChecksum, ix.NumDocs(), ix.DocsChecksum(), ix.Dir()))
	}
	encDir := opts.Encoder
	if encDir == "" {
		encDir = prov.Encoder
		if _, err := os.Stat(encDir); err != nil {
			return fail(fmt.Errorf("%s: the vectors' encoder %s is not there (%v): give the query encoder with --encoder", dir, encDir, err))
		}
	}
	// Queries are encoded as the documents were: the recorded pooling,
	// normalisation, prefixes and length, whatever the directory says.
	info := prov.EncoderInfo
	encOpts := encoder.Options{Backend: opts.Backend, Pooling: info.Pooling, MaxLength: info.MaxLength,
		Normalize: &info.Normalize, QueryPrefix: &info.QueryPrefix, PassagePrefix: &info.PassagePrefix}
	if prov.EncoderName == "" {
		encOpts = encoder.Options{Backend: opts.Backend}
	}
	enc, err := encoder.Open(encDir, encOpts)
	if err != nil {
		return fail(err)
	}
	if enc.Dim() != vec.Dim() {
		return fail(fmt.Errorf("encoder %s makes %d-dimensional vectors, but %s holds %d-dimensional ones (made by %s)", encDir, enc.Dim(), dir, vec.Dim(), prov.EncoderName))
	}
	if prov.EncoderName != "" && enc.Name() != prov.EncoderName {
		return fail(fmt.Errorf("encoder %s (%s) is not the encoder the vectors of %s were made with (%s): queries and documents must share an encoder", encDir, enc.Name(), dir, prov.EncoderName))
	}
	s := &Searcher{ix: ix, vec: vec, enc: enc, ef: opts.EfSearch}
	switch opts.Search {
	case "", "hnsw":
		s.approx = vec.HasHNSW()
		if opts.Search == "hnsw" && !s.approx {
			return fail(fmt.Errorf("%s has no HNSW graph: build it with ssp index build --index %s --encoder DIR --hnsw, or search exactly", dir, ix.Dir()))
		}
	case "exact":
	default:
		return fail(fmt.Errorf("dense search %q: want exact or hnsw", opts.Search))
	}
	if s.ef <= 0 {
		s.ef = DefaultEfSearch
	}
	return s, nil
}

// Close releases the vectors.
func (s *Searcher) Close() error { return s.vec.Close() }

// Approximate reports whether searches go through the HNSW graph.
func (s *Searcher) Approximate() bool { return s.approx }

// Search encodes the queries and returns their nearest documents by inner
// product (cosine for normalised encoders), best first.
func (s *Searcher) Search(ctx context.Context, queries []string, topK int) ([][]search.Hit, error) {
	if len(queries) == 0 {
		return nil, nil
	}
	vecs, err := s.enc.EncodeQueries(ctx, queries)
	if err != nil {
		return nil, err
	}
	var res [][]vector.Result
	if s.approx {
		res, err = s.vec.SearchApprox(vecs, topK, max(s.ef, topK))
	} else {
		res, err = s.vec.Search(vecs, topK)
	}
	if err != nil {
		return nil, err
	}
	out := make([][]search.Hit, len(res))
	for q, rs := range res {
		out[q] = make([]search.Hit, 0, len(rs))
		for _, r := range rs {
			d, err := s.ix.Document(r.ID)
			if err != nil {
				return nil, err
			}
			out[q] = append(out[q], search.Hit{Document: d, Score: float64(r.Score)})
		}
	}
	return out, nil
}

// OpenRanking opens the index at dir for a ranking mode (bm25, dense or
// hybrid). The returned function closes what was opened.
func OpenRanking(dir, ranking string, opts Options, fusion search.Fusion) (search.Searcher, *index.Index, func() error, error) {
	switch ranking {
	case "", "bm25", "dense", "hybrid":
	default:
		return nil, nil, nil, fmt.Errorf("ranking %q: want bm25, dense or hybrid", ranking)
	}
	ix, err := index.Open(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	if ranking == "" || ranking == "bm25" {
		return ix, ix, ix.Close, nil
	}
	ds, err := Open(ix, opts)
	if err != nil {
		ix.Close()
		return nil, nil, nil, err
	}
	closeAll := func() error {
		return errors.Join(ds.Close(), ix.Close())
	}
	if ranking == "dense" {
		return ds, ix, closeAll, nil
	}
	if err := fusion.Validate(2); err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return &search.Hybrid{Searchers: []search.Searcher{ix, ds}, Fusion: fusion}, ix, closeAll, nil
}
