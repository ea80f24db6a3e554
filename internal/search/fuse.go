package search

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Fusion says how ranked lists from several retrievers (BM25 and dense) are
// merged into one.
type Fusion struct {
	// Method is "rrf" (reciprocal-rank fusion) or "weighted" (a weighted
	// sum of scores, each list's scores min-max normalised to [0, 1]).
	Method string `json:"method"`
	// RRFK is the rank offset of reciprocal-rank fusion: a document at rank
	// r (1-based) of a list earns 1/(RRFK + r). 60 is the value of the
	// method's original paper and of most search engines since; it keeps
	// one list's top hit from outweighing agreement between lists.
	RRFK float64 `json:"rrf_k"`
	// Weights are the lists' weights, in list order (nil: equal weights).
	// For "weighted" with two lists, {0.3, 0.7} means 30 % BM25, 70 % dense.
	Weights []float64 `json:"weights,omitempty"`
}

// DefaultFusion is reciprocal-rank fusion with k = 60 and equal weights.
func DefaultFusion() Fusion { return Fusion{Method: "rrf", RRFK: 60} }

// Validate checks the method and parameters for n lists.
func (f Fusion) Validate(n int) error {
	switch f.Method {
	case "rrf":
		if !(f.RRFK >= 0) {
			return fmt.Errorf("fusion rrf_k must be >= 0, got %v", f.RRFK)
		}
	case "weighted":
	default:
		return fmt.Errorf("fusion method %q: want rrf or weighted", f.Method)
	}
	if f.Weights != nil && len(f.Weights) != n {
		return fmt.Errorf("fusion weights: %d given for %d ranked lists", len(f.Weights), n)
	}
	for _, w := range f.Weights {
		if !(w >= 0) {
			return fmt.Errorf("fusion weights must be >= 0, got %v", f.Weights)
		}
	}
	return nil
}

// Fuse merges ranked lists of hits for one query into the topK best by the
// fusion's rule. Documents are identified by ID; a document missing from a
// list earns nothing from it. The fused score replaces the lists' scores.
// Ties go to the document that ranked best in any list, then to the
// smaller ID, so the result does not depend on map order.
func (f Fusion) Fuse(lists [][]Hit, topK int) []Hit {
	type entry struct {
		hit      Hit
		score    float64
		bestRank int
	}
	byID := map[string]*entry{}
	var order []*entry
	for li, list := range lists {
		weight := 1.0
		if f.Weights != nil {
			weight = f.Weights[li]
		}
		lo, hi := scoreRange(list)
		for rank, h := range list {
			e := byID[h.Document.ID]
			if e == nil {
				e = &entry{hit: h, bestRank: rank}
				byID[h.Document.ID] = e
				order = append(order, e)
			}
			e.bestRank = min(e.bestRank, rank)
			switch f.Method {
			case "weighted":
				norm := 1.0 // a list whose hits all score the same: each gets the full weight
				if hi > lo {
					norm = (h.Score - lo) / (hi - lo)
				}
				e.score += weight * norm
			default:
				e.score += weight / (f.RRFK + float64(rank+1))
			}
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.score != b.score {
			return a.score > b.score
		}
		if a.bestRank != b.bestRank {
			return a.bestRank < b.bestRank
		}
		return a.hit.Document.ID < b.hit.Document.ID
	})
	if len(order) > topK {
		order = order[:topK]
	}
	out := make([]Hit, len(order))
	for i, e := range order {
		out[i] = Hit{Document: e.hit.Document, Score: e.score}
	}
	return out
}

func scoreRange(list []Hit) (lo, hi float64) {
	for i, h := range list {
		if i == 0 || h.Score < lo {
			lo = h.Score
		}
		if i == 0 || h.Score > hi {
			hi = h.Score
		}
	}
	return lo, hi
}

// Hybrid is a Searcher that asks several searchers (BM25 and dense) for
// their ranked lists at once and fuses them.
type Hybrid struct {
	Searchers []Searcher
	Fusion    Fusion
	// Depth is how many hits each searcher contributes per query (at
	// least the request's topK): fusion can lift a document that one list
	// ranks low, so the lists must reach below the final cut.
	Depth int
}

// DefaultHybridDepth is the list depth of a Hybrid without one.
const DefaultHybridDepth = 50

// Search runs every searcher concurrently and fuses their lists per query.
func (h *Hybrid) Search(ctx context.Context, queries []string, topK int) ([][]Hit, error) {
	if err := h.Fusion.Validate(len(h.Searchers)); err != nil {
		return nil, err
	}
	depth := h.Depth
	if depth <= 0 {
		depth = DefaultHybridDepth
	}
	depth = max(depth, topK)
	results := make([][][]Hit, len(h.Searchers))
	errs := make([]error, len(h.Searchers))
	var wg sync.WaitGroup
	for i, s := range h.Searchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Search(ctx, queries, depth)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	out := make([][]Hit, len(queries))
	lists := make([][]Hit, len(h.Searchers))
	for q := range queries {
		for i := range h.Searchers {
			if q >= len(results[i]) {
				return nil, fmt.Errorf("hybrid search: searcher %d answered %d of %d queries", i, len(results[i]), len(queries))
			}
			lists[i] = results[i][q]
		}
		out[q] = h.Fusion.Fuse(lists, topK)
	}
	return out, nil
}
