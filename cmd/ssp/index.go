package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/corpus"
	"github.com/ssp-project/ssp/internal/dense"
	"github.com/ssp-project/ssp/internal/encoder"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/vector"
)

func init() {
	register(command{name: "index build", summary: "build a BM25 index from corpus files or directories", run: runIndexBuild})
	register(command{name: "index verify", summary: "check every checksum of a BM25 index", run: runIndexVerify})
	register(command{name: "search query", summary: "query a BM25 index and print ranked hits", run: runSearchQuery})
}

// listFlag collects the values of a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
func (l *listFlag) Type() string       { return "strings" }

func runIndexBuild(ctx context.Context, args []string) error {
	fs := newFlags("index build", "--corpus FILE_OR_DIR [--corpus ...] --out DIR [--encoder DIR] [flags] [MORE_CORPORA...]\n"+
		"       ssp index build --index DIR --encoder DIR [flags]   (add dense vectors to an index, or continue their encoding)")
	var corpora listFlag
	fs.Var(&corpora, "corpus", "corpus file (.jsonl, .jsonl.gz, .json), directory of .txt/.md files, or dictd .index; repeatable")
	out := fs.String("out", "", "index directory to create, or an index to replace")
	force := fs.Bool("force", false, "replace --out even when it is a directory that is not an index (never a file)")
	format := fs.String("format", "", "force the corpus format: "+strings.Join(corpus.Formats, ", "))
	defaults := index.DefaultOptions()
	k1 := fs.Float64("k1", defaults.K1, "BM25 k1")
	b := fs.Float64("b", defaults.B, "BM25 b")
	noStem := fs.Bool("no-stem", false, "do not apply Porter stemming")
	noStop := fs.Bool("no-stopwords", false, "keep English stopwords")
	noLower := fs.Bool("no-lowercase", false, "keep letter case")
	noPoss := fs.Bool("no-possessive", false, "keep trailing 's")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	existing := fs.String("index", "", "an index built before: encode its documents with --encoder (continuing an interrupted encoding) instead of building from --corpus")
	var denseOpts denseBuildFlags
	denseOpts.register(fs)
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	corpora = append(corpora, rest...)
	if err := denseOpts.validate(fs); err != nil {
		return err
	}
	if *existing != "" {
		if len(corpora) > 0 || *out != "" {
			return fmt.Errorf("%w: --index encodes an existing index; it does not take --corpus or --out", errUsage)
		}
		if denseOpts.encoder == "" {
			return fmt.Errorf("%w: --index needs --encoder (the sentence encoder that embeds the index's documents)", errUsage)
		}
		return denseOpts.build(ctx, *existing, *quiet)
	}
	if len(corpora) == 0 {
		return fmt.Errorf("%w: --corpus is required", errUsage)
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	if *format != "" && !contains(corpus.Formats, *format) {
		return fmt.Errorf("%w: --format %q: want one of %s", errUsage, *format, strings.Join(corpus.Formats, ", "))
	}
	opts := defaults
	opts.K1, opts.B, opts.Force = *k1, *b, *force
	opts.Analyzer.Stem = !*noStem
	opts.Analyzer.Stopwords = !*noStop
	opts.Analyzer.Lowercase = !*noLower
	opts.Analyzer.Possessive = !*noPoss

	// Refuse an output that would be refused at the end before reading
	// what may be gigabytes of corpus.
	if err := outdir.Check(*out, outdir.Index, outdir.Options{Force: *force, ForceFlag: "--force", Legacy: index.IsIndex}); err != nil {
		return err
	}
	var sources []*corpus.Source
	var total int64
	for _, p := range corpora {
		src, err := corpus.Open(p, *format)
		if err != nil {
			return err
		}
		sources = append(sources, src)
		total += src.Size()
	}
	if !*quiet {
		opts.Progress = os.Stderr
		if total > 0 {
			opts.Fraction = func() float64 {
				var read int64
				for _, s := range sources {
					read += s.BytesRead()
				}
				return float64(read) / float64(total)
			}
		}
	}
	docs := func(yield func(search.Document, error) bool) {
		for _, src := range sources {
			for d, err := range src.Docs(ctx) {
				if !yield(d, err) || err != nil {
					return
				}
			}
		}
	}
	// The build's heap is nearly all long-lived postings; a lower GC target
	// trades a little CPU for a much lower peak than Go's default of twice
	// the live heap.
	defer debug.SetGCPercent(debug.SetGCPercent(40))
	st, err := index.Build(ctx, docs, *out, opts)
	if err != nil {
		return err
	}
	fmt.Printf("indexed %d documents, %d terms, %.1f MB in %s (%.0f docs/s) -> %s\n",
		st.NumDocs, st.NumTerms, float64(st.Bytes)/1e6, st.Duration.Truncate(time.Millisecond),
		float64(st.NumDocs)/max(st.Duration.Seconds(), 1e-9), *out)
	if denseOpts.encoder != "" {
		return denseOpts.build(ctx, *out, *quiet)
	}
	return nil
}

// parseInterleaved parses flags that may come after positional arguments
// and returns the positional arguments.
func parseInterleaved(fs *pflag.FlagSet, args []string) ([]string, error) {
	return parseFlagsAndFiles(fs, args)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func runIndexVerify(ctx context.Context, args []string) error {
	fs := newFlags("index verify", "--index DIR")
	dir := fs.String("index", "", "index directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" && fs.NArg() == 1 {
		*dir = fs.Arg(0)
	}
	if *dir == "" {
		return fmt.Errorf("%w: --index is required", errUsage)
	}
	ix, err := index.Open(*dir)
	if err != nil {
		return err
	}
	defer ix.Close()
	if err := ix.Verify(); err != nil {
		return err
	}
	fmt.Printf("%s: ok, %d documents, %d terms, %.1f MB\n", *dir, ix.NumDocs(), ix.NumTerms(), float64(ix.Bytes())/1e6)
	if vdir := dense.Dir(*dir); vector.IsIndex(vdir) {
		vix, err := vector.Open(vdir)
		if err != nil {
			return err
		}
		defer vix.Close()
		if err := vix.Verify(); err != nil {
			return err
		}
		if vix.Len() != ix.NumDocs() {
			return fmt.Errorf("%s: %d vectors for %d documents: encode again with ssp index build --index %s --encoder DIR --force-encode", vdir, vix.Len(), ix.NumDocs(), *dir)
		}
		fmt.Printf("%s: ok, %d vectors of %d dimensions (%s)%s\n", vdir, vix.Len(), vix.Dim(), vix.DType(), map[bool]string{true: ", HNSW graph", false: ""}[vix.HasHNSW()])
	}
	return nil
}

func runSearchQuery(ctx context.Context, args []string) error {
	fs := newFlags("search query", "--index DIR [--topk 10] [--json] [--ranking bm25|dense|hybrid] QUERY...")
	dir := fs.String("index", "", "index directory")
	topK := fs.Int("topk", 10, "hits per query")
	asJSON := fs.Bool("json", false, "print one JSON array of hits per query")
	backend := fs.String("backend", "", "compute backend of the query encoder (--ranking dense or hybrid): "+backendHelp)
	ranking := addRankingFlags(fs)
	queries, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: --index is required", errUsage)
	}
	if *topK < 1 {
		return fmt.Errorf("%w: --topk must be at least 1, got %d", errUsage, *topK)
	}
	if len(queries) == 0 {
		return fmt.Errorf("%w: give at least one query", errUsage)
	}
	searcher, _, closeIndex, err := ranking.open(*dir, *backend)
	if err != nil {
		return err
	}
	defer closeIndex()
	start := time.Now()
	res, err := searcher.Search(ctx, queries, *topK)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, hits := range res {
			if hits == nil {
				hits = []search.Hit{}
			}
			if err := enc.Encode(hits); err != nil {
				return err
			}
		}
		return nil
	}
	for qi, hits := range res {
		fmt.Printf("query %q: %d hits\n", queries[qi], len(hits))
		for r, h := range hits {
			fmt.Printf("%3d  %8.4f  %s  %s\n     %s\n", r+1, h.Score, h.Document.ID, h.Document.Title(), snippet(h.Document.Text(), 160))
		}
		fmt.Println()
	}
	fmt.Fprintf(os.Stderr, "%d queries in %s\n", len(queries), elapsed.Truncate(time.Microsecond))
	return nil
}

// snippet shortens text to about n bytes on a rune boundary, on one line.
func snippet(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) <= n {
		return text
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "…"
}

// denseBuildFlags are index build's flags for dense vectors.
type denseBuildFlags struct {
	encoder, backend, dtype    string
	pooling                    string
	queryPrefix, passagePrefix string
	maxLength                  int
	batch                      int
	hnsw, force                bool
	hnswM, hnswConstruction    int
	set                        map[string]bool // flags given
}

func (d *denseBuildFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&d.encoder, "encoder", "", "sentence encoder directory (BERT-family: MiniLM, BGE, E5; docs/encoders.md): also embed every document into the index's dense/ folder, for --ranking dense or hybrid")
	fs.StringVar(&d.backend, "backend", "", "compute backend of the encoder: "+backendHelp)
	fs.StringVar(&d.pooling, "pooling", "", "with --encoder: mean or cls (default: the encoder directory's sentence-transformers Pooling module, else mean)")
	fs.StringVar(&d.queryPrefix, "query-prefix", "", "with --encoder: text put before every query, e.g. \"query: \" for E5 (default: the directory's prompts); recorded with the vectors")
	fs.StringVar(&d.passagePrefix, "passage-prefix", "", "with --encoder: text put before every document, e.g. \"passage: \" for E5 (default: the directory's prompts)")
	fs.IntVar(&d.maxLength, "encoder-max-length", 0, "with --encoder: tokens per text, [CLS] and [SEP] included (default: the directory's max_seq_length)")
	fs.StringVar(&d.dtype, "vector-dtype", string(vector.Int8), "stored precision of the vectors: int8 (a scale per vector; a quarter of float32) or float16")
	fs.IntVar(&d.batch, "encode-batch", 256, "documents encoded per durable chunk (an interrupted encoding continues after the last whole chunk)")
	fs.BoolVar(&d.hnsw, "hnsw", false, "after encoding, build the HNSW graph for approximate search (docs/vector-index.md)")
	fs.IntVar(&d.hnswM, "hnsw-m", 16, "HNSW links per node on the upper layers (twice as many on the bottom one)")
	fs.IntVar(&d.hnswConstruction, "hnsw-ef-construction", 100, "HNSW candidates kept while linking a node (more: a better graph, built more slowly)")
	fs.BoolVar(&d.force, "force-encode", false, "encode again even when the index has vectors of this encoder, or an unfinished encoding by another")
}

func (d *denseBuildFlags) validate(fs *pflag.FlagSet) error {
	d.set = map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { d.set[f.Name] = true })
	if d.pooling != "" && d.pooling != "mean" && d.pooling != "cls" {
		return fmt.Errorf("%w: --pooling %q: want mean or cls", errUsage, d.pooling)
	}
	if d.maxLength < 0 {
		return fmt.Errorf("%w: --encoder-max-length must not be negative", errUsage)
	}
	if d.dtype != string(vector.Int8) && d.dtype != string(vector.Float16) {
		return fmt.Errorf("%w: --vector-dtype %q: want int8 or float16", errUsage, d.dtype)
	}
	if d.batch < 1 {
		return fmt.Errorf("%w: --encode-batch must be at least 1, got %d", errUsage, d.batch)
	}
	if d.hnswM < 2 || d.hnswConstruction < 1 {
		return fmt.Errorf("%w: --hnsw-m must be at least 2 and --hnsw-ef-construction at least 1", errUsage)
	}
	if d.encoder != "" {
		if err := encoder.IsEncoderDir(d.encoder); err != nil {
			return fmt.Errorf("--encoder %s: %w", d.encoder, err)
		}
	}
	return nil
}

func (d *denseBuildFlags) build(ctx context.Context, indexDir string, quiet bool) error {
	opts := dense.BuildOptions{
		Encoder: d.encoder, DType: vector.DType(d.dtype), BatchSize: d.batch, HNSW: d.hnsw, Force: d.force,
		EncoderOptions: encoder.Options{Backend: d.backend, Pooling: d.pooling, MaxLength: d.maxLength},
	}
	if d.set["query-prefix"] {
		opts.EncoderOptions.QueryPrefix = &d.queryPrefix
	}
	if d.set["passage-prefix"] {
		opts.EncoderOptions.PassagePrefix = &d.passagePrefix
	}
	opts.HNSWOptions = vector.HNSWOptions{M: d.hnswM, EfConstruction: d.hnswConstruction}
	if !quiet {
		opts.Progress = os.Stderr
	}
	st, err := dense.Build(ctx, indexDir, opts)
	if err != nil {
		return err
	}
	switch {
	case st.Encoded == 0:
		fmt.Printf("%s: the %d documents were already encoded by this encoder (--force-encode to encode again)\n", st.Dir, st.Docs)
	default:
		fmt.Printf("encoded %d documents (%d before this run) in %s (%.1f docs/s) -> %s\n",
			st.Encoded, st.Resumed, st.Duration.Truncate(time.Millisecond), float64(st.Encoded)/max(st.Duration.Seconds(), 1e-9), st.Dir)
	}
	if st.HNSW {
		fmt.Printf("%s: HNSW graph ready\n", st.Dir)
	}
	return nil
}
