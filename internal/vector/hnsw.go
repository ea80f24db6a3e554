package vector

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// HNSWOptions are the parameters of the HNSW graph (Malkov & Yashunin's
// hierarchical navigable small world).
type HNSWOptions struct {
	// M is the number of links a node keeps on the upper layers; layer 0,
	// which every node is on, keeps up to 2·M. More links: better recall,
	// bigger graph, slower build. Default 16.
	M int
	// EfConstruction is the candidate list length while inserting; higher
	// builds a better graph more slowly. Default 100.
	EfConstruction int
	// Workers inserting in parallel; default GOMAXPROCS.
	Workers int
	// Seed for the node levels; the graph also depends on the insertion
	// interleaving of the workers, so only Workers = 1 is reproducible.
	Seed uint64
}

func (o *HNSWOptions) defaults() {
	if o.M <= 0 {
		o.M = 16
	}
	if o.EfConstruction <= 0 {
		o.EfConstruction = 100
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
}

// hnsw is the graph. Layer 0 links of node i are links0[i*(m0+1):], a count
// followed by m0 slots; a node on layers 1..L has L blocks of m+1 int32 in
// upper, starting at block upperOff[i].
type hnsw struct {
	n, m, m0 int
	efc      int
	entry    int32 // -1 when empty
	maxLevel int
	levels   []uint8
	links0   []int32
	upperOff []int32
	upper    []int32

	// build state
	locks []sync.Mutex
	mu    sync.Mutex // entry and maxLevel while building

	// file state, when loaded
	mapped []byte
	info   graphMeta
	dir    string

	visited sync.Pool // *visitSet
}

func (g *hnsw) links(id int32, layer int) []int32 {
	if layer == 0 {
		b := int(id) * (g.m0 + 1)
		return g.links0[b+1 : b+1+int(g.links0[b])]
	}
	b := (int(g.upperOff[id]) + layer - 1) * (g.m + 1)
	return g.upper[b+1 : b+1+int(g.upper[b])]
}

func (g *hnsw) setLinks(id int32, layer int, ids []int32) {
	var block []int32
	if layer == 0 {
		b := int(id) * (g.m0 + 1)
		block = g.links0[b : b+g.m0+1]
	} else {
		b := (int(g.upperOff[id]) + layer - 1) * (g.m + 1)
		block = g.upper[b : b+g.m+1]
	}
	block[0] = int32(len(ids))
	copy(block[1:], ids)
}

func (g *hnsw) maxLinks(layer int) int {
	if layer == 0 {
		return g.m0
	}
	return g.m
}

// visitSet marks visited nodes with a generation number, so that starting a
// new search is one increment instead of clearing n entries.
type visitSet struct {
	gen  uint32
	mark []uint32
}

func (g *hnsw) getVisited() *visitSet {
	if v, ok := g.visited.Get().(*visitSet); ok {
		v.gen++
		if v.gen == 0 {
			clear(v.mark)
			v.gen = 1
		}
		return v
	}
	return &visitSet{gen: 1, mark: make([]uint32, g.n)}
}

// cand is a node and its similarity (inner product) to the query.
type cand struct {
	sim float32
	id  int32
}

// candHeap is a binary heap of candidates; with max set the best is on top,
// otherwise the worst.
type candHeap struct {
	max bool
	c   []cand
}

func (h *candHeap) above(i, j int) bool {
	if h.max {
		return h.c[i].sim > h.c[j].sim
	}
	return h.c[i].sim < h.c[j].sim
}

func (h *candHeap) push(c cand) {
	h.c = append(h.c, c)
	for i := len(h.c) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.above(i, p) {
			break
		}
		h.c[i], h.c[p] = h.c[p], h.c[i]
		i = p
	}
}

func (h *candHeap) pop() cand {
	top := h.c[0]
	last := len(h.c) - 1
	h.c[0] = h.c[last]
	h.c = h.c[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && h.above(r, l) {
			m = r
		}
		if !h.above(m, i) {
			break
		}
		h.c[i], h.c[m] = h.c[m], h.c[i]
		i = m
	}
	return top
}

// querier scores stored vectors against one query, in the storage's own
// arithmetic (int8·int8 or float16·float32).
type querier struct {
	ix    *Index
	i8    []int8
	scale float32
	f32   []float32
}

func (q *querier) sim(id int32) float32 {
	ix, d := q.ix, q.ix.meta.Dim
	if ix.meta.DType == Int8 {
		return float32(dotI8(q.i8, ix.i8[int(id)*d:(int(id)+1)*d])) * q.scale * ix.scales[id]
	}
	return dotF16(ix.f16[int(id)*d:(int(id)+1)*d], q.f32)
}

// setStored makes the querier score against stored vector id.
func (q *querier) setStored(id int32) {
	ix, d := q.ix, q.ix.meta.Dim
	if ix.meta.DType == Int8 {
		q.i8, q.scale = ix.i8[int(id)*d:(int(id)+1)*d], ix.scales[id]
		return
	}
	if q.f32 == nil {
		q.f32 = make([]float32, d)
	}
	ix.decode(int(id), q.f32)
}

// builder is one inserting goroutine's scratch space.
type builder struct {
	g      *hnsw
	ix     *Index
	q, aux querier
	nbuf   []int32
	cands  candHeap
	res    candHeap
}

// searchLayer is the best-first search of one layer from the entry points:
// it returns up to ef nodes closest to the query, best first. While building
// it copies each neighbour list under the node's lock.
func (g *hnsw) searchLayer(q *querier, eps []cand, ef, layer int, cands, res *candHeap, nbuf *[]int32, building bool) []cand {
	vis := g.getVisited()
	defer g.visited.Put(vis)
	cands.max, res.max = true, false
	cands.c, res.c = cands.c[:0], res.c[:0]
	for _, e := range eps {
		vis.mark[e.id] = vis.gen
		cands.push(e)
		res.push(e)
	}
	for len(res.c) > ef {
		res.pop()
	}
	for len(cands.c) > 0 {
		c := cands.pop()
		if len(res.c) >= ef && c.sim < res.c[0].sim {
			break
		}
		var nb []int32
		if building {
			g.locks[c.id].Lock()
			*nbuf = append((*nbuf)[:0], g.links(c.id, layer)...)
			g.locks[c.id].Unlock()
			nb = *nbuf
		} else {
			nb = g.links(c.id, layer)
		}
		for _, e := range nb {
			if vis.mark[e] == vis.gen {
				continue
			}
			vis.mark[e] = vis.gen
			s := q.sim(e)
			if len(res.c) < ef || s > res.c[0].sim {
				cands.push(cand{s, e})
				res.push(cand{s, e})
				if len(res.c) > ef {
					res.pop()
				}
			}
		}
	}
	out := slices.Clone(res.c)
	slices.SortFunc(out, func(a, b cand) int {
		switch {
		case a.sim > b.sim:
			return -1
		case a.sim < b.sim:
			return 1
		}
		return int(a.id) - int(b.id)
	})
	return out
}

// greedy walks one layer to the neighbour most similar to the query until
// no neighbour is better (ef = 1 search of the upper layers).
func (g *hnsw) greedy(q *querier, ep cand, layer int, nbuf *[]int32, building bool) cand {
	for changed := true; changed; {
		changed = false
		var nb []int32
		if building {
			g.locks[ep.id].Lock()
			*nbuf = append((*nbuf)[:0], g.links(ep.id, layer)...)
			g.locks[ep.id].Unlock()
			nb = *nbuf
		} else {
			nb = g.links(ep.id, layer)
		}
		for _, e := range nb {
			if s := q.sim(e); s > ep.sim {
				ep, changed = cand{s, e}, true
			}
		}
	}
	return ep
}

// selectNeighbors is the HNSW heuristic: take candidates best first, and
// keep one only if it is more similar to the base than to every neighbour
// kept so far. Links then point in diverse directions, which keeps
// clustered data connected across clusters. cs must be sorted best first.
func (b *builder) selectNeighbors(cs []cand, m int) []cand {
	if len(cs) <= m {
		return cs
	}
	kept := make([]cand, 0, m)
	for _, c := range cs {
		if len(kept) == m {
			break
		}
		b.aux.setStored(c.id)
		good := true
		for _, s := range kept {
			if b.aux.sim(s.id) > c.sim {
				good = false
				break
			}
		}
		if good {
			kept = append(kept, c)
		}
	}
	return kept
}

func (b *builder) insert(id int32) {
	g := b.g
	level := int(g.levels[id])
	g.mu.Lock()
	ep, top := g.entry, g.maxLevel
	if level <= top {
		g.mu.Unlock()
	} else {
		// A new top node: hold the lock for the whole insertion, so that no
		// other insertion starts from an entry point that is not linked yet.
		defer g.mu.Unlock()
	}
	b.q.setStored(id)
	cur := cand{b.q.sim(ep), ep}
	for l := top; l > level; l-- {
		cur = g.greedy(&b.q, cur, l, &b.nbuf, true)
	}
	eps := []cand{cur}
	for l := min(level, top); l >= 0; l-- {
		found := g.searchLayer(&b.q, eps, g.efc, l, &b.cands, &b.res, &b.nbuf, true)
		sel := b.selectNeighbors(found, g.m)
		ids := make([]int32, len(sel))
		for i, c := range sel {
			ids[i] = c.id
		}
		g.locks[id].Lock()
		g.setLinks(id, l, ids)
		g.locks[id].Unlock()
		for _, c := range sel {
			b.link(c.id, id, c.sim, l)
		}
		eps = found
	}
	if level > top {
		g.entry, g.maxLevel = id, level
	}
}

// link adds the reverse link from e to the new node, pruning e's list with
// the heuristic when it is full.
func (b *builder) link(e, id int32, sim float32, layer int) {
	g := b.g
	g.locks[e].Lock()
	defer g.locks[e].Unlock()
	cur := g.links(e, layer)
	if slices.Contains(cur, id) {
		return
	}
	if max := g.maxLinks(layer); len(cur) < max {
		g.setLinks(e, layer, append(slices.Clone(cur), id))
		return
	}
	var eq querier
	eq.ix = b.ix
	eq.setStored(e)
	cs := make([]cand, 0, len(cur)+1)
	cs = append(cs, cand{sim, id})
	for _, o := range cur {
		cs = append(cs, cand{eq.sim(o), o})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		switch {
		case a.sim > b.sim:
			return -1
		case a.sim < b.sim:
			return 1
		}
		return int(a.id) - int(b.id)
	})
	sel := b.selectNeighbors(cs, g.maxLinks(layer))
	ids := make([]int32, len(sel))
	for i, c := range sel {
		ids[i] = c.id
	}
	g.setLinks(e, layer, ids)
}

// BuildHNSW builds the HNSW graph over the stored (quantised) vectors with
// opts.Workers goroutines and writes it into the index directory
// (hnsw.bin, then hnsw.json, each through a temporary file and a rename),
// replacing any graph there. Progress lines go to progress when it is not
// nil. It must not run concurrently with searches of the same Index.
func (ix *Index) BuildHNSW(opts HNSWOptions, progress io.Writer) error {
	opts.defaults()
	if opts.M > 255 {
		return fmt.Errorf("vector index %s: HNSW M = %d, at most 255", ix.dir, opts.M)
	}
	start := time.Now()
	n := ix.Len()
	g := &hnsw{n: n, m: opts.M, m0: 2 * opts.M, efc: opts.EfConstruction, entry: -1, dir: ix.dir}
	g.levels = make([]uint8, n)
	g.upperOff = make([]int32, n)
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	ml := 1 / math.Log(float64(opts.M))
	slots := 0
	for i := range g.levels {
		l := int(-math.Log(1-rng.Float64()) * ml)
		l = min(l, 32)
		g.levels[i] = uint8(l)
		g.upperOff[i] = int32(slots)
		slots += l
	}
	g.links0 = make([]int32, n*(g.m0+1))
	g.upper = make([]int32, slots*(g.m+1))
	g.locks = make([]sync.Mutex, n)
	if n > 0 {
		g.entry, g.maxLevel = 0, int(g.levels[0])
	}
	var next atomic.Int64
	next.Store(1)
	var done atomic.Int64
	var wg sync.WaitGroup
	report := max(int64(n)/20, 1)
	for range opts.Workers {
		b := &builder{g: g, ix: ix}
		b.q.ix, b.aux.ix = ix, ix
		wg.Go(func() {
			for {
				id := next.Add(1) - 1
				if id >= int64(n) {
					return
				}
				b.insert(int32(id))
				if d := done.Add(1); progress != nil && d%report == 0 {
					fmt.Fprintf(progress, "hnsw: %d/%d vectors linked, %.0fs\n", d, n, time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	g.locks = nil
	g.info = graphMeta{Format: graphFormat, Version: formatVersion, Count: int64(n), M: g.m, M0: g.m0,
		EfConstruction: g.efc, Entry: g.entry, MaxLevel: g.maxLevel, UpperBlocks: int64(slots),
		BuildSeconds: time.Since(start).Seconds()}
	if err := g.save(ix.dir); err != nil {
		return fmt.Errorf("vector index %s: %w", ix.dir, err)
	}
	if ix.graph != nil {
		ix.graph.close()
	}
	ix.graph = g
	if progress != nil {
		fmt.Fprintf(progress, "hnsw: %d vectors, M %d, efConstruction %d, built and saved in %.1fs\n", n, g.m, g.efc, time.Since(start).Seconds())
	}
	return nil
}

// HasHNSW reports whether the index has an HNSW graph.
func (ix *Index) HasHNSW() bool { return ix.graph != nil }

// SearchApprox returns, for each query, k vectors found by searching the
// HNSW graph with a candidate list of efSearch (at least k) entries, best
// first. Scores are computed as in Search. Queries run in parallel.
func (ix *Index) SearchApprox(queries [][]float32, k int, efSearch int) ([][]Result, error) {
	if err := ix.checkQueries(queries, k); err != nil {
		return nil, err
	}
	if ix.graph == nil {
		return nil, fmt.Errorf("vector index %s: no HNSW graph; build one with BuildHNSW", ix.dir)
	}
	out := make([][]Result, len(queries))
	g := ix.graph
	ef := max(efSearch, k)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(queries)) {
		wg.Go(func() {
			q := querier{ix: ix, i8: make([]int8, ix.meta.Dim)}
			var cands, res candHeap
			for {
				i := int(next.Add(1) - 1)
				if i >= len(queries) {
					return
				}
				if g.entry < 0 {
					out[i] = []Result{}
					continue
				}
				var qs float32 = 1
				if ix.meta.DType == Int8 {
					qs = quantizeInt8(queries[i], q.i8)
				} else {
					q.f32 = queries[i]
				}
				// Rank with the query's scale left out (it does not change the
				// order) and apply it to the scores returned.
				q.scale = 1
				cur := cand{q.sim(g.entry), g.entry}
				for l := g.maxLevel; l > 0; l-- {
					cur = g.greedy(&q, cur, l, nil, false)
				}
				found := g.searchLayer(&q, []cand{cur}, ef, 0, &cands, &res, nil, false)
				found = found[:min(k, len(found))]
				rs := make([]Result, len(found))
				for j, c := range found {
					rs[j] = Result{ID: int(c.id), Score: c.sim * qs}
				}
				out[i] = rs
			}
		})
	}
	wg.Wait()
	return out, nil
}
