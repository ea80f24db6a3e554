package main

import (
	"fmt"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/dense"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/search"
)

// rankingOptions are the flags that choose how an embedded index ranks:
// BM25, its dense vectors, or both fused. They are shared by search
// serve, search query, eval, ask, serve and train.
type rankingOptions struct {
	Ranking     string
	Encoder     string
	DenseSearch string
	EfSearch    int
	Fusion      string
	DenseWeight float64
}

// addRankingFlags registers the ranking flags; the ranking's flag name is
// --ranking, not --retriever, which names a remote server.
func addRankingFlags(fs *pflag.FlagSet) *rankingOptions {
	o := &rankingOptions{}
	fs.StringVar(&o.Ranking, "ranking", "bm25", dense.RankingHelp)
	fs.StringVar(&o.Encoder, "query-encoder", "", "with --ranking dense or hybrid: the query encoder directory (default: the encoder the index's vectors were made with)")
	fs.StringVar(&o.DenseSearch, "dense-search", "", "with --ranking dense or hybrid: exact (every vector) or hnsw (the graph; default when the index has one)")
	fs.IntVar(&o.EfSearch, "ef-search", dense.DefaultEfSearch, "with HNSW: candidates kept per query (more: higher recall, slower)")
	fs.StringVar(&o.Fusion, "fusion", "rrf", "with --ranking hybrid: rrf (reciprocal-rank fusion, k=60) or weighted (min-max normalised scores, weighted by --dense-weight)")
	fs.Float64Var(&o.DenseWeight, "dense-weight", 0.5, "with --ranking hybrid: the dense list's weight, in [0, 1] (BM25 gets the rest)")
	return o
}

func (o rankingOptions) validate() error {
	switch o.Ranking {
	case "bm25", "dense", "hybrid":
	default:
		return fmt.Errorf("%w: --ranking %q: want bm25, dense or hybrid", errUsage, o.Ranking)
	}
	if !(o.DenseWeight >= 0 && o.DenseWeight <= 1) {
		return fmt.Errorf("%w: --dense-weight must be in [0, 1], got %v", errUsage, o.DenseWeight)
	}
	if o.Ranking == "hybrid" {
		if err := o.fusion().Validate(2); err != nil {
			return fmt.Errorf("%w: --fusion: %v", errUsage, err)
		}
	}
	return nil
}

func (o rankingOptions) fusion() search.Fusion {
	f := search.DefaultFusion()
	if o.Fusion != "" {
		f.Method = o.Fusion
	}
	f.Weights = []float64{2 * (1 - o.DenseWeight), 2 * o.DenseWeight} // 0.5 → equal weights of 1
	return f
}

// open opens the index at dir ranked as the options say.
func (o rankingOptions) open(dir, backend string) (search.Searcher, *index.Index, func() error, error) {
	if err := o.validate(); err != nil {
		return nil, nil, nil, err
	}
	return dense.OpenRanking(dir, o.Ranking, dense.Options{
		Encoder: o.Encoder, Backend: backend, Search: o.DenseSearch, EfSearch: o.EfSearch,
	}, o.fusion())
}
