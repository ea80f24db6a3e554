package index

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/search"
)

func docSeq(docs []search.Document) iter.Seq2[search.Document, error] {
	return func(yield func(search.Document, error) bool) {
		for _, d := range docs {
			if !yield(d, nil) {
				return
			}
		}
	}
}

// randomCorpus draws documents from a Zipfian vocabulary so that posting
// lists span many blocks and scores tie now and then.
func randomCorpus(r *rand.Rand, n, vocab int) []search.Document {
	z := rand.NewZipf(r, 1.1, 2, uint64(vocab-1))
	docs := make([]search.Document, n)
	for i := range docs {
		var sb strings.Builder
		fmt.Fprintf(&sb, "\"Title %d w%d\"\n", i, z.Uint64())
		for range 1 + r.IntN(60) {
			fmt.Fprintf(&sb, "w%d ", z.Uint64())
		}
		docs[i] = search.Document{ID: fmt.Sprintf("d%d", i), Contents: sb.String()}
	}
	return docs
}

// bruteForce scores every document from its raw text with the BM25 formula,
// independently of the index's posting lists.
type bruteForce struct {
	a     Analyzer
	tfs   []map[string]uint32
	df    map[string]int64
	norms []byte
	sc    *scorer
}

func newBruteForce(docs []search.Document, a Analyzer, k1, b float64) *bruteForce {
	tfs := make([]map[string]uint32, len(docs))
	df := map[string]int64{}
	var total int64
	norms := make([]byte, len(docs))
	for i, d := range docs {
		terms := a.Terms(nil, d.Contents)
		total += int64(len(terms))
		norms[i] = lengthToNorm(len(terms))
		tfs[i] = map[string]uint32{}
		for _, t := range terms {
			if tfs[i][t] == 0 {
				df[t]++
			}
			tfs[i][t]++
		}
	}
	return &bruteForce{a: a, tfs: tfs, df: df, norms: norms, sc: newScorer(k1, b, int64(len(docs)), total)}
}

func (bf *bruteForce) topDocs(query string, k int) []ScoredDoc {
	tfs, df, norms, sc := bf.tfs, bf.df, bf.norms, bf.sc
	qtf := map[string]int{}
	for _, t := range bf.a.Terms(nil, query) {
		qtf[t]++
	}
	var all []ScoredDoc
	for i := range tfs {
		var s float64
		matched := false
		for t, n := range qtf {
			if f := tfs[i][t]; f > 0 {
				matched = true
				s += float64(sc.score(sc.idf(df[t])*float32(n), f, norms[i]))
			}
		}
		if matched {
			all = append(all, ScoredDoc{Doc: uint32(i), Score: s})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Score > all[j].Score })
	return all[:min(k, len(all))]
}

func buildTest(t *testing.T, docs []search.Document, opts Options) *Index {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "idx")
	if _, err := Build(context.Background(), docSeq(docs), dir, opts); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	if err := ix.Verify(); err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestSearchMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 6 {
		docs := randomCorpus(r, 200+r.IntN(1500), 50+r.IntN(400))
		opts := DefaultOptions()
		if trial%2 == 1 {
			opts.K1, opts.B = 1.2, 0.75
		}
		ix := buildTest(t, docs, opts)
		bf := newBruteForce(docs, opts.Analyzer, opts.K1, opts.B)
		if ix.NumDocs() != len(docs) {
			t.Fatalf("NumDocs = %d, want %d", ix.NumDocs(), len(docs))
		}
		for qi := range 40 {
			var q []string
			for range 1 + r.IntN(6) {
				q = append(q, fmt.Sprintf("w%d", r.IntN(60)))
			}
			query := strings.Join(q, " ")
			k := []int{1, 3, 10, 100}[qi%4]
			want := bf.topDocs(query, k)
			for _, exhaustive := range []bool{false, true} {
				got := ix.TopDocs(query, k, exhaustive)
				if len(got) != len(want) {
					t.Fatalf("trial %d query %q k=%d exhaustive=%v: %d hits, want %d", trial, query, k, exhaustive, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("trial %d query %q k=%d exhaustive=%v: hit %d = %+v, want %+v", trial, query, k, exhaustive, i, got[i], want[i])
					}
				}
			}
		}
	}
}

func TestSearchBatchAndDocuments(t *testing.T) {
	docs := []search.Document{
		{ID: "a", Contents: "\"Paris\"\nParis is the capital of France."},
		{ID: "b", Contents: "\"Berlin\"\nBerlin is the capital of Germany."},
		{ID: "c", Contents: "\"Cats\"\nCats are small carnivorous mammals."},
	}
	ix := buildTest(t, docs, DefaultOptions())
	res, err := ix.Search(context.Background(), []string{"capital of France", "the", "cat", "mammal carnivorous"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("got %d result lists", len(res))
	}
	if len(res[0]) != 2 || res[0][0].Document.ID != "a" || res[0][1].Document.ID != "b" {
		t.Errorf("capital of France: %+v", res[0])
	}
	if len(res[1]) != 0 {
		t.Errorf("stopword-only query matched %+v", res[1])
	}
	if len(res[2]) != 1 || res[2][0].Document != docs[2] || res[2][0].Document.Title() != "Cats" {
		t.Errorf("cat: %+v", res[2])
	}
	if res[3][0].Score <= res[2][0].Score {
		t.Errorf("two matching terms should outscore one: %v vs %v", res[3][0].Score, res[2][0].Score)
	}
	// Lucene formula by hand for "cat" in doc c: N=3, df=1, tf=2 (title and
	// text), dl=5 (cat cat small carnivor mammal), avgdl = (4+4+5)/3.
	idf := math.Log(1 + (3-1+0.5)/(1+0.5))
	want := idf * 2 / (2 + 0.9*(1-0.4+0.4*5/(13.0/3)))
	if math.Abs(res[2][0].Score-want) > 1e-5 {
		t.Errorf("score %v, want %v", res[2][0].Score, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Search(ctx, []string{"cat"}, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled search: err = %v", err)
	}
}

func TestBuildReplacesAndCleansUp(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "idx")
	one := []search.Document{{ID: "1", Contents: "\"One\"\nalpha"}}
	two := []search.Document{{ID: "1", Contents: "\"One\"\nalpha"}, {ID: "2", Contents: "\"Two\"\nbeta"}}
	if _, err := Build(context.Background(), docSeq(one), dir, DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), docSeq(two), dir, DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ix.NumDocs() != 2 {
		t.Errorf("replaced index has %d docs", ix.NumDocs())
	}
	ix.Close()
	// A failing document stream leaves the old index and no temporary files.
	failing := func(yield func(search.Document, error) bool) {
		if yield(search.Document{ID: "x", Contents: "x"}, nil) {
			yield(search.Document{}, errors.New("corpus.jsonl:2: broken"))
		}
	}
	if _, err := Build(context.Background(), failing, dir, DefaultOptions()); err == nil || !strings.Contains(err.Error(), "corpus.jsonl:2") {
		t.Fatalf("err = %v", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("parent holds %d entries after failed build", len(entries))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, docSeq(two), filepath.Join(parent, "other"), DefaultOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled build: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "other")); !os.IsNotExist(err) {
		t.Errorf("cancelled build left an index")
	}
	notIndex := filepath.Join(parent, "notindex")
	os.MkdirAll(notIndex, 0o755)
	os.WriteFile(filepath.Join(notIndex, "precious.txt"), []byte("x"), 0o644)
	if _, err := Build(context.Background(), docSeq(one), notIndex, DefaultOptions()); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("build over a directory that is not an index: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(notIndex, "precious.txt")); err != nil {
		t.Errorf("refused build touched the directory: %v", err)
	}
	// The corpus itself as the output: a file is never replaced, not even
	// with Force.
	corpusFile := filepath.Join(parent, "corpus.jsonl")
	os.WriteFile(corpusFile, []byte(`{"id":"1","contents":"x"}`+"\n"), 0o644)
	forced := DefaultOptions()
	forced.Force = true
	if _, err := Build(context.Background(), docSeq(one), corpusFile, forced); err == nil || !strings.Contains(err.Error(), corpusFile) {
		t.Errorf("build over the corpus file: err = %v", err)
	}
	if fi, err := os.Stat(corpusFile); err != nil || fi.IsDir() {
		t.Errorf("corpus file replaced: %v", err)
	}
	// Force replaces the foreign directory with an index.
	if _, err := Build(context.Background(), docSeq(one), notIndex, forced); err != nil {
		t.Errorf("forced build: %v", err)
	}
	// An empty corpus builds nothing.
	if _, err := Build(context.Background(), docSeq(nil), filepath.Join(parent, "empty"), DefaultOptions()); err == nil || !strings.Contains(err.Error(), "no documents") {
		t.Errorf("empty corpus: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "empty")); !os.IsNotExist(err) {
		t.Errorf("empty corpus left an output")
	}
}

func TestOpenDamaged(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	docs := randomCorpus(r, 300, 100)
	src := filepath.Join(t.TempDir(), "idx")
	if _, err := Build(context.Background(), docSeq(docs), src, DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	copyIndex := func(t *testing.T) string {
		dst := filepath.Join(t.TempDir(), "idx")
		os.MkdirAll(dst, 0o755)
		entries, _ := os.ReadDir(src)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(src, e.Name()))
			os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
		return dst
	}
	for _, name := range []string{docsFile, docOffsFile, normsFile, termsFile, termStrsFile, blocksFile, postingsFile} {
		t.Run("truncated "+name, func(t *testing.T) {
			dir := copyIndex(t)
			p := filepath.Join(dir, name)
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-1)
			_, err := Open(dir)
			if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), name) {
				t.Errorf("err = %v", err)
			}
		})
		t.Run("flipped "+name, func(t *testing.T) {
			dir := copyIndex(t)
			p := filepath.Join(dir, name)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o644)
			ix, err := Open(dir)
			if err == nil {
				err = ix.Verify()
				// Whatever passed the structure check must still search safely.
				ix.TopDocs("w1 w2 w3", 10, false)
				ix.Close()
			}
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("err = %v", err)
			}
		})
	}
	t.Run("bad meta", func(t *testing.T) {
		dir := copyIndex(t)
		os.WriteFile(filepath.Join(dir, metaFile), []byte("{"), 0o644)
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), metaFile) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := Open(filepath.Join(t.TempDir(), "nothing")); err == nil {
			t.Error("opened a missing index")
		}
	})
}
