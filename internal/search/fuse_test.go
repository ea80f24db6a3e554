package search

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

func hits(ids string, scores ...float64) []Hit {
	var out []Hit
	for i, id := range strings.Fields(ids) {
		s := 0.0
		if i < len(scores) {
			s = scores[i]
		}
		out = append(out, Hit{Document: Document{ID: id, Contents: "\"" + id + "\"\ntext"}, Score: s})
	}
	return out
}

func ids(hs []Hit) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, h.Document.ID)
	}
	return strings.Join(parts, " ")
}

// TestFuseRRF checks reciprocal-rank fusion against sums worked by hand.
// Mutations seen to fail: 0-based ranks (1/(k+r) with r from 0) changes
// the scores; dropping the weights; breaking ties by map order.
func TestFuseRRF(t *testing.T) {
	bm25 := hits("a b c", 12, 7, 1)
	dense := hits("c d a", 0.9, 0.8, 0.7)
	f := Fusion{Method: "rrf", RRFK: 60}
	got := f.Fuse([][]Hit{bm25, dense}, 10)
	// a: 1/61 + 1/63; c: 1/63 + 1/61; b: 1/62; d: 1/62.
	// a and c tie: a ranked first in a list (rank 0), as did c; a < c by ID.
	// b and d tie at rank 1; b < d.
	if ids(got) != "a c b d" {
		t.Fatalf("fused order %q, want \"a c b d\"", ids(got))
	}
	want := 1.0/61 + 1.0/63
	if math.Abs(got[0].Score-want) > 1e-12 {
		t.Errorf("score of a = %v, want %v", got[0].Score, want)
	}
	if math.Abs(got[2].Score-1.0/62) > 1e-12 {
		t.Errorf("score of b = %v, want 1/62", got[2].Score)
	}
	if got := f.Fuse([][]Hit{bm25, dense}, 2); ids(got) != "a c" {
		t.Errorf("top 2 = %q, want \"a c\"", ids(got))
	}

	// Weights: dense counted three times as much moves d above b.
	f.Weights = []float64{1, 3}
	got = f.Fuse([][]Hit{bm25, dense}, 10)
	if ids(got) != "c a d b" {
		t.Errorf("weighted rrf order %q, want \"c a d b\"", ids(got))
	}
	if got[0].Document.Contents != "\"c\"\ntext" {
		t.Errorf("fused hit lost its document: %+v", got[0])
	}
}

// TestFuseWeighted checks the min-max normalised weighted sum.
// Mutation seen to fail: summing raw scores (BM25's 12 then swamps the
// dense cosines).
func TestFuseWeighted(t *testing.T) {
	bm25 := hits("a b c", 12, 7, 2)       // normalised 1, 0.5, 0
	dense := hits("c b a", 0.9, 0.8, 0.5) // normalised 1, 0.75, 0
	f := Fusion{Method: "weighted", Weights: []float64{0.3, 0.7}}
	got := f.Fuse([][]Hit{bm25, dense}, 3)
	// a: 0.3; b: 0.15 + 0.525 = 0.675; c: 0.7.
	if ids(got) != "c b a" {
		t.Fatalf("order %q, want \"c b a\"", ids(got))
	}
	for i, want := range []float64{0.7, 0.675, 0.3} {
		if math.Abs(got[i].Score-want) > 1e-12 {
			t.Errorf("score %d = %v, want %v", i, got[i].Score, want)
		}
	}
	// One hit in a list: it takes the list's full weight.
	got = Fusion{Method: "weighted"}.Fuse([][]Hit{hits("x", 3), nil}, 3)
	if len(got) != 1 || got[0].Score != 1 {
		t.Errorf("single hit fused to %+v, want score 1", got)
	}
}

func TestFusionValidate(t *testing.T) {
	for _, f := range []Fusion{
		{Method: "max"},
		{Method: "rrf", RRFK: -1},
		{Method: "rrf", RRFK: math.NaN()},
		{Method: "weighted", Weights: []float64{1}},
		{Method: "weighted", Weights: []float64{1, -1}},
	} {
		if err := f.Validate(2); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	if err := DefaultFusion().Validate(2); err != nil {
		t.Error(err)
	}
}

type fixedSearcher struct {
	lists [][]Hit
	depth int
	err   error
}

func (s *fixedSearcher) Search(_ context.Context, queries []string, topK int) ([][]Hit, error) {
	s.depth = topK
	if s.err != nil {
		return nil, s.err
	}
	return s.lists[:len(queries)], nil
}

// TestHybridSearch checks that the hybrid asks each searcher for its depth
// (not the request's topK), fuses per query and passes errors on.
// Mutation seen to fail: asking the searchers for topK only (the second
// query's "z", ranked 3rd by both, is then never seen).
func TestHybridSearch(t *testing.T) {
	a := &fixedSearcher{lists: [][]Hit{hits("a b"), hits("x y z")}}
	b := &fixedSearcher{lists: [][]Hit{hits("b c"), hits("w v z")}}
	h := &Hybrid{Searchers: []Searcher{a, b}, Fusion: DefaultFusion(), Depth: 20}
	res, err := h.Search(context.Background(), []string{"q1", "q2"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a.depth != 20 || b.depth != 20 {
		t.Errorf("searchers asked for %d and %d hits, want the depth 20", a.depth, b.depth)
	}
	if len(res) != 2 || ids(res[0]) != "b" || ids(res[1]) != "z" {
		t.Errorf("fused results %q / %q, want \"b\" / \"z\"", ids(res[0]), ids(res[1]))
	}
	b.err = errors.New("encoder failed")
	if _, err := h.Search(context.Background(), []string{"q1"}, 1); err == nil || !strings.Contains(err.Error(), "encoder failed") {
		t.Errorf("error %v, want the searcher's error", err)
	}
}
