// Command benchretrieval measures retrieval quality of BM25, dense and
// hybrid ranking on a real labelled set that installs offline: definitions
// from one dictionary (WordNet 3.0, Debian's dict-wn) as queries, entries
// of another (GCIDE, Debian's dict-gcide) as passages. The gold passages
// of a query are every GCIDE entry whose headword is the word WordNet
// defines; the two dictionaries were written independently, so a query
// shares meaning with its gold entries far more than it shares words.
//
// It writes the corpus and queries into -work, builds an ssp index with
// dense vectors there, and prints recall@k and MRR@10 per ranking as a
// Markdown table.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ssp-project/ssp/internal/corpus"
	"github.com/ssp-project/ssp/internal/dense"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/search"
)

type query struct {
	Word  string   `json:"word"`
	Text  string   `json:"query"`
	Golds []string `json:"gold_ids"`
}

func main() {
	wn := flag.String("wn", "", "WordNet dictd index (wn.index)")
	gcide := flag.String("gcide", "", "GCIDE dictd index (gcide.index)")
	encoderDir := flag.String("encoder", "", "sentence encoder directory")
	work := flag.String("work", "", "working directory (corpus, queries, index)")
	nQueries := flag.Int("queries", 300, "queries (words defined by both dictionaries)")
	nDocs := flag.Int("docs", 2000, "passages in the corpus (the gold entries of the queries, then random other entries)")
	passageChars := flag.Int("passage-chars", 600, "characters kept of each GCIDE entry")
	seed := flag.Uint64("seed", 1, "sampling seed")
	flag.Parse()
	if *wn == "" || *gcide == "" || *encoderDir == "" || *work == "" {
		log.Fatal("usage: benchretrieval -wn wn.index -gcide gcide.index -encoder DIR -work DIR")
	}
	ctx := context.Background()
	if err := os.MkdirAll(*work, 0o755); err != nil {
		log.Fatal(err)
	}
	queries, docs := prepare(ctx, *wn, *gcide, *nQueries, *nDocs, *passageChars, *seed)
	writeJSONL(filepath.Join(*work, "corpus.jsonl"), docs)
	writeJSONL(filepath.Join(*work, "queries.jsonl"), queries)

	ixDir := filepath.Join(*work, "index")
	seq := func(yield func(search.Document, error) bool) {
		for _, d := range docs {
			if !yield(d, nil) {
				return
			}
		}
	}
	opts := index.DefaultOptions()
	opts.Force = true
	if _, err := index.Build(ctx, seq, ixDir, opts); err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	st, err := dense.Build(ctx, ixDir, dense.BuildOptions{Encoder: *encoderDir, Progress: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("encoded %d passages in %s", st.Encoded, time.Since(start).Round(time.Second))

	texts := make([]string, len(queries))
	for i, q := range queries {
		texts[i] = q.Text
	}
	ks := []int{1, 5, 10, 20}
	fmt.Printf("%d queries, %d passages (%d gold entries); encoder %s\n\n", len(queries), len(docs), countGolds(queries), filepath.Base(*encoderDir))
	fmt.Println("| ranking | recall@1 | recall@5 | recall@10 | recall@20 | MRR@10 | query time |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, mode := range []struct{ name, ranking, fusion string }{
		{"bm25", "bm25", "rrf"}, {"dense", "dense", "rrf"},
		{"hybrid (rrf, k=60)", "hybrid", "rrf"}, {"hybrid (weighted 0.5)", "hybrid", "weighted"},
	} {
		fusion := search.DefaultFusion()
		fusion.Method = mode.fusion
		s, _, closeIx, err := dense.OpenRanking(ixDir, mode.ranking, dense.Options{Search: "exact"}, fusion)
		if err != nil {
			log.Fatal(err)
		}
		t := time.Now()
		res, err := s.Search(ctx, texts, 20)
		if err != nil {
			log.Fatal(err)
		}
		elapsed := time.Since(t)
		closeIx()
		recall := make([]float64, len(ks))
		var mrr float64
		for qi, q := range queries {
			first := -1
			for r, h := range res[qi] {
				if slices.Contains(q.Golds, h.Document.ID) {
					first = r
					break
				}
			}
			for ki, k := range ks {
				if first >= 0 && first < k {
					recall[ki]++
				}
			}
			if first >= 0 && first < 10 {
				mrr += 1 / float64(first+1)
			}
		}
		n := float64(len(queries))
		fmt.Printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.1f ms/query |\n", mode.name,
			recall[0]/n, recall[1]/n, recall[2]/n, recall[3]/n, mrr/n, elapsed.Seconds()*1000/n)
	}
}

var (
	// A WordNet entry: "word\n    n 1: gloss; "example" [syn: ...] 2: ...".
	firstSense = regexp.MustCompile(`(?s)\b(?:n|v|adj|adv)\s+(?:1:\s+)?(.*?)(?:\s+\d+:\s|\[syn:|\[ant:|$)`)
	quoted     = regexp.MustCompile(`"[^"]*"`)
	simpleWord = regexp.MustCompile(`^[a-z]{4,}$`)
)

// gloss returns the definition of the first sense of a WordNet entry,
// without its examples and cross-references.
func gloss(text string) string {
	m := firstSense.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	g := quoted.ReplaceAllString(m[1], "")
	g, _, _ = strings.Cut(g, ";")
	return strings.Join(strings.Fields(g), " ")
}

// headword returns a GCIDE document's headword, lower-cased, without the
// "#2" that numbers a word's further entries.
func headword(id string) string {
	id = strings.TrimPrefix(id, "gcide:")
	id, _, _ = strings.Cut(id, "#")
	return strings.ToLower(id)
}

func prepare(ctx context.Context, wnPath, gcidePath string, nQueries, nDocs, passageChars int, seed uint64) ([]query, []search.Document) {
	glosses := map[string]string{}
	for d := range readAll(ctx, wnPath) {
		w := strings.ToLower(d.Title())
		if simpleWord.MatchString(w) {
			if g := gloss(d.Text()); len(strings.Fields(g)) >= 4 && !strings.Contains(strings.ToLower(g), w) {
				glosses[w] = g
			}
		}
	}
	entries := map[string][]search.Document{}
	var all []search.Document
	seen := map[string]bool{}
	for d := range readAll(ctx, gcidePath) {
		text := d.Text()
		if seen[text] { // dictd indexes several headwords of one entry
			continue
		}
		seen[text] = true
		if len(text) > passageChars {
			cut := passageChars
			for cut > 0 && text[cut]&0xC0 == 0x80 {
				cut--
			}
			text = text[:cut]
		}
		d.Contents = "\"" + d.Title() + "\"\n" + strings.Join(strings.Fields(text), " ")
		w := headword(d.ID)
		entries[w] = append(entries[w], d)
		all = append(all, d)
	}
	var words []string
	for w := range glosses {
		if n := len(entries[w]); n >= 1 && n <= 3 {
			words = append(words, w)
		}
	}
	sort.Strings(words)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rng.Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
	if len(words) > nQueries {
		words = words[:nQueries]
	}
	var queries []query
	var docs []search.Document
	inCorpus := map[string]bool{}
	for _, w := range words {
		q := query{Word: w, Text: glosses[w]}
		for _, d := range entries[w] {
			q.Golds = append(q.Golds, d.ID)
			docs = append(docs, d)
			inCorpus[d.ID] = true
		}
		queries = append(queries, q)
	}
	for _, i := range rng.Perm(len(all)) {
		if len(docs) >= nDocs {
			break
		}
		if d := all[i]; !inCorpus[d.ID] && !slices.Contains(words, headword(d.ID)) {
			docs = append(docs, d)
			inCorpus[d.ID] = true
		}
	}
	rng.Shuffle(len(docs), func(i, j int) { docs[i], docs[j] = docs[j], docs[i] })
	return queries, docs
}

func readAll(ctx context.Context, path string) func(func(search.Document) bool) {
	src, err := corpus.Open(path, "")
	if err != nil {
		log.Fatal(err)
	}
	return func(yield func(search.Document) bool) {
		for d, err := range src.Docs(ctx) {
			if err != nil {
				log.Fatalf("%s: %v", path, err)
			}
			if !yield(d) {
				return
			}
		}
	}
}

func countGolds(qs []query) int {
	n := 0
	for _, q := range qs {
		n += len(q.Golds)
	}
	return n
}

func writeJSONL[T any](path string, rows []T) {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		log.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			log.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		log.Fatal(err)
	}
}
