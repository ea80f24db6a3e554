package vector

import (
	"runtime"
	"sync"
	"sync/atomic"
)

const (
	// shardRows is the unit of work a search goroutine takes at a time:
	// small enough to balance two or sixty-four cores, large enough that
	// taking one costs nothing.
	shardRows = 4096
	// tileRows vectors are scored against every query of a batch before the
	// scan moves on, so that they are read from memory once per batch and
	// from L1/L2 for the other queries.
	tileRows = 64
	// batchQueries bounds the queries that share one pass over the vectors;
	// their quantised copies and per-goroutine heaps stay cache-sized.
	batchQueries = 64
)

// preparedQueries are a batch of queries in the form the kernels read:
// int8 with a per-query scale, or float32, laid out contiguously with
// stride dim.
type preparedQueries struct {
	n      int
	i8     []int8
	scales []float64
	f32    []float32
}

func (ix *Index) prepare(queries [][]float32) *preparedQueries {
	d := ix.meta.Dim
	p := &preparedQueries{n: len(queries)}
	switch ix.meta.DType {
	case Int8:
		p.i8 = make([]int8, len(queries)*d)
		p.scales = make([]float64, len(queries))
		for i, q := range queries {
			p.scales[i] = float64(quantizeInt8(q, p.i8[i*d:(i+1)*d]))
		}
	case Float16:
		p.f32 = make([]float32, len(queries)*d)
		for i, q := range queries {
			copy(p.f32[i*d:], q)
		}
	}
	return p
}

// Search returns, for each query, the k vectors with the highest inner
// product, best first, ties broken by lower ID. With int8 storage the query
// is quantised to int8 as well (its own scale), so a score is
// qscale·vscale·Σ qᵢvᵢ computed exactly in integers; with float16 storage
// the query stays float32. It uses every core.
func (ix *Index) Search(queries [][]float32, k int) ([][]Result, error) {
	if err := ix.checkQueries(queries, k); err != nil {
		return nil, err
	}
	out := make([][]Result, len(queries))
	for lo := 0; lo < len(queries); lo += batchQueries {
		hi := min(lo+batchQueries, len(queries))
		ix.searchBatch(queries[lo:hi], k, out[lo:hi])
	}
	return out, nil
}

func (ix *Index) searchBatch(queries [][]float32, k int, out [][]Result) {
	n := ix.Len()
	k = min(k, n)
	if k == 0 {
		for i := range out {
			out[i] = []Result{}
		}
		return
	}
	pq := ix.prepare(queries)
	workers := min(runtime.GOMAXPROCS(0), (n+shardRows-1)/shardRows)
	heaps := make([][]*topK, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		hs := make([]*topK, len(queries))
		for i := range hs {
			hs[i] = newTopK(k)
		}
		heaps[w] = hs
		wg.Go(func() {
			for {
				lo := int(next.Add(shardRows)) - shardRows
				if lo >= n {
					return
				}
				ix.scanShard(pq, lo, min(lo+shardRows, n), hs)
			}
		})
	}
	wg.Wait()
	for i := range queries {
		merged := heaps[0][i]
		for w := 1; w < workers; w++ {
			h := heaps[w][i]
			for j := range h.keys {
				merged.push(h.keys[j], h.ids[j])
			}
		}
		out[i] = ix.results(merged, pq, i)
	}
}

// results turns ranking keys into scores: for int8 the key lacks the
// query's scale, which does not change the order.
func (ix *Index) results(h *topK, pq *preparedQueries, qi int) []Result {
	s := h.sorted()
	res := make([]Result, len(s))
	for j, e := range s {
		key := e.key
		if pq.scales != nil {
			key *= pq.scales[qi]
		}
		res[j] = Result{ID: int(e.id), Score: float32(key)}
	}
	return res
}

// scanShard scores vectors [lo, hi) against every query of the batch, four
// queries per kernel call, a tile of vectors at a time.
func (ix *Index) scanShard(pq *preparedQueries, lo, hi int, hs []*topK) {
	d := ix.meta.Dim
	groups := pq.n / 4
	var o4i [4]int32
	var o4f [4]float32
	for t := lo; t < hi; t += tileRows {
		te := min(t+tileRows, hi)
		for g := range groups {
			h0, h1, h2, h3 := hs[4*g], hs[4*g+1], hs[4*g+2], hs[4*g+3]
			switch ix.meta.DType {
			case Int8:
				q := pq.i8[4*g*d : (4*g+4)*d]
				for r := t; r < te; r++ {
					dot4I8(ix.i8[r*d:(r+1)*d], q, d, &o4i)
					s := float64(ix.scales[r])
					h0.push(float64(o4i[0])*s, int32(r))
					h1.push(float64(o4i[1])*s, int32(r))
					h2.push(float64(o4i[2])*s, int32(r))
					h3.push(float64(o4i[3])*s, int32(r))
				}
			case Float16:
				q := pq.f32[4*g*d : (4*g+4)*d]
				for r := t; r < te; r++ {
					dot4F16(ix.f16[r*d:(r+1)*d], q, d, &o4f)
					h0.push(float64(o4f[0]), int32(r))
					h1.push(float64(o4f[1]), int32(r))
					h2.push(float64(o4f[2]), int32(r))
					h3.push(float64(o4f[3]), int32(r))
				}
			}
		}
		for qi := 4 * groups; qi < pq.n; qi++ {
			h := hs[qi]
			switch ix.meta.DType {
			case Int8:
				q := pq.i8[qi*d : (qi+1)*d]
				for r := t; r < te; r++ {
					h.push(float64(dotI8(ix.i8[r*d:(r+1)*d], q))*float64(ix.scales[r]), int32(r))
				}
			case Float16:
				q := pq.f32[qi*d : (qi+1)*d]
				for r := t; r < te; r++ {
					h.push(float64(dotF16(ix.f16[r*d:(r+1)*d], q)), int32(r))
				}
			}
		}
	}
}
