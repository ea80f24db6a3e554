package dense

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/encoder"
	"github.com/ssp-project/ssp/internal/fixtures"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/vector"
)

// testEncoder is a tiny random-weight BERT with E5's prefixes, written by
// scripts/fetch_encoders.sh: its vectors mean nothing, but they are what
// the encoder gives, which is all these tests compare.
func testEncoder(t *testing.T, name string) string {
	t.Helper()
	return fixtures.Asset(t, "scripts/fetch_encoders.sh", "encoders", name)
}

var topics = []string{"rivers", "mountains", "music", "chemistry", "football", "poetry", "trains", "bread"}

func testDocs(n int, salt string) []search.Document {
	var docs []search.Document
	for i := range n {
		topic := topics[i%len(topics)]
		docs = append(docs, search.Document{
			ID:       fmt.Sprintf("d%03d", i),
			Contents: fmt.Sprintf("\"%s %d%s\"\nA passage about %s, number %d, with some words of its own: %s.", topic, i, salt, topic, i, strings.Repeat(topic[:3]+" ", i%5+1)),
		})
	}
	return docs
}

func buildIndex(t *testing.T, dir string, docs []search.Document) {
	t.Helper()
	seq := func(yield func(search.Document, error) bool) {
		for _, d := range docs {
			if !yield(d, nil) {
				return
			}
		}
	}
	opts := index.DefaultOptions()
	opts.Force = true
	if _, err := index.Build(context.Background(), seq, dir, opts); err != nil {
		t.Fatal(err)
	}
}

// TestDenseSearchMatchesBruteForce checks that a dense search returns
// the documents whose passage encodings are nearest the query encoding:
// vector i is document i, passages carry the passage prefix and queries
// the query prefix, and queries are encoded with the recorded settings.
// Mutations seen to fail: encoding documents with Encode (no prefix);
// mapping results to document i+1; queries pooled by CLS instead of the
// recorded mean pooling.
func TestDenseSearchMatchesBruteForce(t *testing.T) {
	encDir := testEncoder(t, "tiny-e5")
	dir := filepath.Join(t.TempDir(), "ix")
	docs := testDocs(40, "")
	buildIndex(t, dir, docs)
	if _, err := Build(context.Background(), dir, BuildOptions{Encoder: encDir, DType: vector.Float16, BatchSize: 7}); err != nil {
		t.Fatal(err)
	}
	enc, err := encoder.Open(encDir, encoder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, len(docs))
	for i, d := range docs {
		texts[i] = d.Contents
	}
	pvecs, err := enc.EncodePassages(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	queries := []string{"rivers and water", "a song", "number 17", "bread baking"}
	qvecs, err := enc.EncodeQueries(context.Background(), queries)
	if err != nil {
		t.Fatal(err)
	}

	s, ix, closeIx, err := OpenRanking(dir, "dense", Options{Search: "exact"}, search.DefaultFusion())
	if err != nil {
		t.Fatal(err)
	}
	defer closeIx()
	if ix.NumDocs() != len(docs) {
		t.Fatalf("index has %d documents", ix.NumDocs())
	}
	res, err := s.Search(context.Background(), queries, 5)
	if err != nil {
		t.Fatal(err)
	}
	for qi := range queries {
		type scored struct {
			id    string
			score float64
		}
		var ref []scored
		for di := range docs {
			var dot float64
			for k := range qvecs[qi] {
				dot += float64(qvecs[qi][k]) * float64(pvecs[di][k])
			}
			ref = append(ref, scored{docs[di].ID, dot})
		}
		sort.SliceStable(ref, func(i, j int) bool { return ref[i].score > ref[j].score })
		if len(res[qi]) != 5 {
			t.Fatalf("query %q: %d hits, want 5", queries[qi], len(res[qi]))
		}
		refScore := map[string]float64{}
		for _, x := range ref {
			refScore[x.id] = x.score
		}
		for r, h := range res[qi] {
			// float16 storage moves scores by ~1e-3; a swap of two
			// near-equal neighbours is not an error.
			if h.Document.ID != ref[r].id && math.Abs(refScore[h.Document.ID]-ref[r].score) > 2e-3 {
				t.Errorf("query %q rank %d: %s (%.4f by brute force), want %s (%.4f)", queries[qi], r, h.Document.ID, refScore[h.Document.ID], ref[r].id, ref[r].score)
			}
			if math.Abs(h.Score-ref[r].score) > 2e-3 {
				t.Errorf("query %q rank %d: score %.5f, want %.5f", queries[qi], r, h.Score, ref[r].score)
			}
			want, _ := ix.Document(indexOf(docs, h.Document.ID))
			if h.Document != want {
				t.Errorf("hit %s carries %+v, want the index's document", h.Document.ID, h.Document)
			}
		}
	}
}

func indexOf(docs []search.Document, id string) int {
	for i, d := range docs {
		if d.ID == id {
			return i
		}
	}
	return -1
}

// TestBuildResumes interrupts an encoding after a few chunks and checks
// that running the build again continues it (encoding only what was
// missing) and gives the vectors of an uninterrupted build.
// Mutations seen to fail: never reading build.json (always starting
// over); resuming at document 0 instead of the first missing one.
func TestBuildResumes(t *testing.T) {
	encDir := testEncoder(t, "tiny-e5")
	docs := testDocs(50, "")
	whole := filepath.Join(t.TempDir(), "whole")
	buildIndex(t, whole, docs)
	if _, err := Build(context.Background(), whole, BuildOptions{Encoder: encDir, BatchSize: 8}); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "ix")
	buildIndex(t, dir, docs)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Build(ctx, dir, BuildOptions{Encoder: encDir, BatchSize: 8, OnChunk: func(done int) {
		if done >= 24 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted build returned %v, want context.Canceled", err)
	}
	ix, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ix, Options{}); err == nil || !strings.Contains(err.Error(), "unfinished") {
		t.Errorf("opening an unfinished encoding: %v, want an error saying it is unfinished", err)
	}
	ix.Close()

	st, err := Build(context.Background(), dir, BuildOptions{Encoder: encDir, BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if st.Resumed < 24 || st.Resumed+st.Encoded != len(docs) {
		t.Errorf("resumed build: %d already encoded, %d encoded now, want >= 24 and a total of %d", st.Resumed, st.Encoded, len(docs))
	}
	if got, want := readVectors(t, dir), readVectors(t, whole); !reflect.DeepEqual(got, want) {
		t.Errorf("resumed vectors differ from an uninterrupted build's")
	}

	// A second run finds the work done.
	st, err = Build(context.Background(), dir, BuildOptions{Encoder: encDir})
	if err != nil || st.Encoded != 0 {
		t.Errorf("build of an encoded index: encoded %d, err %v; want nothing to do", st.Encoded, err)
	}
}

// readVectors returns every vector of an index's dense folder, by
// searching with each unit vector (exact search gives every score).
func readVectors(t *testing.T, indexDir string) [][]float32 {
	t.Helper()
	v, err := vector.Open(Dir(indexDir))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	out := make([][]float32, v.Len())
	for i := range out {
		out[i] = make([]float32, v.Dim())
	}
	for k := range v.Dim() {
		q := make([]float32, v.Dim())
		q[k] = 1
		res, err := v.Search([][]float32{q}, v.Len())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res[0] {
			out[r.ID][k] = r.Score
		}
	}
	return out
}

// TestOpenErrors checks the errors a user meets: no vectors, vectors of
// another build of the index, another encoder, a damaged vector file.
// Mutations seen to fail: no document-store checksum check (vectors of
// another build accepted); no encoder dimension and name checks.
func TestOpenErrors(t *testing.T) {
	encDir := testEncoder(t, "tiny-e5")
	otherEnc := testEncoder(t, "tiny-bge")
	dir := filepath.Join(t.TempDir(), "ix")
	buildIndex(t, dir, testDocs(20, ""))

	_, _, _, err := OpenRanking(dir, "dense", Options{}, search.DefaultFusion())
	if err == nil || !strings.Contains(err.Error(), "no dense vectors") || !strings.Contains(err.Error(), "--encoder") {
		t.Errorf("no vectors: %v", err)
	}
	if _, _, _, err := OpenRanking(dir, "semantic", Options{}, search.DefaultFusion()); err == nil || !strings.Contains(err.Error(), "bm25, dense or hybrid") {
		t.Errorf("bad ranking: %v", err)
	}
	if _, err := Build(context.Background(), dir, BuildOptions{Encoder: encDir}); err != nil {
		t.Fatal(err)
	}

	// Another encoder for the queries.
	_, _, _, err = OpenRanking(dir, "dense", Options{Encoder: otherEnc}, search.DefaultFusion())
	if err == nil || !(strings.Contains(err.Error(), "dimensional") || strings.Contains(err.Error(), "not the encoder")) {
		t.Errorf("another query encoder: %v", err)
	}
	// Vectors of another encoder: a build with it is refused without --force.
	if _, err := Build(context.Background(), dir, BuildOptions{Encoder: otherEnc}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("re-encoding with another encoder without force: %v", err)
	}

	// The index rebuilt from another corpus (same size) keeps the old dense/
	// folder only if someone copies it back: simulate that.
	other := filepath.Join(t.TempDir(), "other")
	buildIndex(t, other, testDocs(20, " (second edition)"))
	if err := os.Rename(Dir(dir), Dir(other)); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = OpenRanking(other, "dense", Options{}, search.DefaultFusion())
	if err == nil || !strings.Contains(err.Error(), "another build of the index") {
		t.Errorf("vectors of another build: %v", err)
	}

	// A damaged vector file.
	if _, err := Build(context.Background(), dir, BuildOptions{Encoder: encDir}); err != nil {
		t.Fatal(err)
	}
	damaged := false
	entries, _ := os.ReadDir(Dir(dir))
	for _, e := range entries {
		p := filepath.Join(Dir(dir), e.Name())
		if fi, _ := os.Stat(p); fi != nil && fi.Size() > 1000 {
			data, _ := os.ReadFile(p)
			if err := os.WriteFile(p, data[:len(data)-10], 0o644); err != nil {
				t.Fatal(err)
			}
			damaged = true
			break
		}
	}
	if !damaged {
		t.Fatal("no vector file to damage")
	}
	if _, _, _, err := OpenRanking(dir, "dense", Options{}, search.DefaultFusion()); err == nil {
		t.Error("a truncated vector file opened")
	}
}

// TestRetrieveShapeSameForAllRankings serves one index ranked three ways
// through the Search-R1 /retrieve API and checks that the answers have the
// same shape in both return_scores modes: only the order and the scores
// may differ.
func TestRetrieveShapeSameForAllRankings(t *testing.T) {
	encDir := testEncoder(t, "tiny-e5")
	dir := filepath.Join(t.TempDir(), "ix")
	buildIndex(t, dir, testDocs(30, ""))
	if _, err := Build(context.Background(), dir, BuildOptions{Encoder: encDir}); err != nil {
		t.Fatal(err)
	}
	shapes := map[bool]map[string]string{true: {}, false: {}}
	for _, ranking := range Rankings {
		s, _, closeIx, err := OpenRanking(dir, ranking, Options{}, search.DefaultFusion())
		if err != nil {
			t.Fatal(err)
		}
		srv, err := search.NewServer(s, search.DefaultServerConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, withScores := range []bool{true, false} {
			body, _ := json.Marshal(map[string]any{"queries": []string{"rivers", "music and poetry"}, "topk": 3, "return_scores": withScores})
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/retrieve", bytes.NewReader(body)))
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: status %d: %s", ranking, rec.Code, rec.Body)
			}
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			shapes[withScores][ranking] = shapeOf(v)
		}
		closeIx()
	}
	for withScores, byRanking := range shapes {
		if byRanking["dense"] != byRanking["bm25"] || byRanking["hybrid"] != byRanking["bm25"] {
			t.Errorf("return_scores=%v: shapes differ:\nbm25   %s\ndense  %s\nhybrid %s", withScores, byRanking["bm25"], byRanking["dense"], byRanking["hybrid"])
		}
		if withScores && !strings.Contains(byRanking["dense"], "score:number") {
			t.Errorf("return_scores=true without scores: %s", byRanking["dense"])
		}
	}
}

// shapeOf describes a JSON value's structure: keys and types, not values.
func shapeOf(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + shapeOf(x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = shapeOf(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case string:
		return "string"
	case float64:
		return "number"
	default:
		return fmt.Sprintf("%T", v)
	}
}
