package builtin

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

func TestWorldGuarantees(t *testing.T) {
	a := newAtlas(1)
	docs := a.documents()
	seeds, bench := a.seedsAndBenchmark()
	if len(docs) < 300 || len(seeds) < 100 || len(bench) < 60 {
		t.Fatalf("sizes: %d docs, %d seeds, %d benchmark", len(docs), len(seeds), len(bench))
	}
	// Deterministic for a seed.
	if b := newAtlas(1).documents(); !slices.Equal(b, docs) {
		t.Error("same seed gave a different corpus")
	}
	// Held out: no benchmark answer is a seed answer.
	seedAnswers := map[string]bool{}
	for _, s := range seeds {
		seedAnswers[s.Answer[0]] = true
	}
	var all strings.Builder
	for _, d := range docs {
		all.WriteString(d.Contents + "\n")
	}
	for _, q := range bench {
		if q.Hops == 1 && seedAnswers[q.GoldenAnswers[0]] {
			t.Errorf("benchmark answer %q is also a seed", q.GoldenAnswers[0])
		}
		if !strings.Contains(all.String(), q.GoldenAnswers[0]) {
			t.Errorf("answer %q of %q is not in the corpus", q.GoldenAnswers[0], q.Question)
		}
	}
}

func TestPrepare(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the default model and index")
	}
	t.Setenv("GOMLX_BACKEND", "go")
	cache := t.TempDir()
	p, err := Prepare(context.Background(), cache, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.Seeds, p.Benchmark, p.Corpus, filepath.Join(p.Model, "config.json"), filepath.Join(p.Model, "tokenizer.json")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	tok, err := tokenizer.Load(p.Model)
	if err != nil {
		t.Fatal(err)
	}
	text := "<search>Who wrote it?</search>"
	ids := tok.Encode(text)
	if len(ids) != len("Who wrote it?")+2 || tok.Decode(ids) != text {
		t.Errorf("byte tokenizer: %v → %q", ids, tok.Decode(ids))
	}
	m, err := model.Load(p.Model, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	ix, err := index.Open(p.Index)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	a := newAtlas(1)
	hits, err := ix.Search(context.Background(), []string{a.people[0].book}, 1)
	if err != nil || len(hits[0]) == 0 || !strings.Contains(hits[0][0].Document.Contents, a.people[0].name) {
		t.Errorf("search for %q: %v %v", a.people[0].book, hits, err)
	}
	// A second call reuses the entry.
	if p2, err := Prepare(context.Background(), cache, t.Logf); err != nil || p2 != p {
		t.Errorf("second Prepare: %v %v", p2, err)
	}
}
