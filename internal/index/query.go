package index

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/ssp-project/ssp/internal/search"
)

// Search answers each query with its topK best documents, best first, ties
// broken by insertion order of the documents. Queries run in parallel on
// GOMAXPROCS goroutines. Query text goes through the index's analyzer;
// repeated query terms count repeatedly, as in Lucene's query parser.
func (ix *Index) Search(ctx context.Context, queries []string, topK int) ([][]search.Hit, error) {
	return ix.searchBatch(ctx, queries, topK, false)
}

// SearchExhaustive is Search without pruning: it scores every document
// matching any query term. It exists as the reference that Search must match.
func (ix *Index) SearchExhaustive(ctx context.Context, queries []string, topK int) ([][]search.Hit, error) {
	return ix.searchBatch(ctx, queries, topK, true)
}

func (ix *Index) searchBatch(ctx context.Context, queries []string, topK int, exhaustive bool) ([][]search.Hit, error) {
	if topK < 0 {
		return nil, fmt.Errorf("index %s: topK must be >= 0, got %d", ix.dir, topK)
	}
	out := make([][]search.Hit, len(queries))
	workers := min(runtime.GOMAXPROCS(0), len(queries))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		next    int
		firstEr error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := &querier{ix: ix}
			for {
				mu.Lock()
				i := next
				next++
				stop := firstEr != nil
				mu.Unlock()
				if i >= len(queries) || stop {
					return
				}
				err := ctx.Err()
				var hits []search.Hit
				if err == nil {
					hits, err = q.run(queries[i], topK, exhaustive)
				}
				if err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					return
				}
				out[i] = hits
			}
		}()
	}
	wg.Wait()
	if firstEr != nil {
		return nil, firstEr
	}
	return out, nil
}

// ScoredDoc is a document number with its BM25 score.
type ScoredDoc struct {
	Doc   uint32
	Score float64
}

// TopDocs returns the document numbers and scores of the topK best documents
// for one query, without loading the documents.
func (ix *Index) TopDocs(query string, topK int, exhaustive bool) []ScoredDoc {
	q := &querier{ix: ix}
	return q.topDocs(query, topK, exhaustive)
}

// querier holds per-goroutine scratch space for queries.
type querier struct {
	ix      *Index
	terms   []string
	cursors []*cursor
	pool    []*cursor
	heap    topHeap
	prefix  []float64
}

func (q *querier) run(text string, topK int, exhaustive bool) ([]search.Hit, error) {
	top := q.topDocs(text, topK, exhaustive)
	hits := make([]search.Hit, len(top))
	for i, sd := range top {
		doc, err := q.ix.Document(int(sd.Doc))
		if err != nil {
			return nil, err
		}
		hits[i] = search.Hit{Document: doc, Score: sd.Score}
	}
	return hits, nil
}

// prepare analyses the query and opens one cursor per distinct known term.
func (q *querier) prepare(text string) {
	q.terms = q.ix.meta.Analyzer.Terms(q.terms[:0], text)
	slices.Sort(q.terms)
	q.cursors = q.cursors[:0]
	for i := 0; i < len(q.terms); {
		j := i + 1
		for j < len(q.terms) && q.terms[j] == q.terms[i] {
			j++
		}
		if ti, ok := q.ix.lookup(q.terms[i]); ok {
			var c *cursor
			if n := len(q.cursors); n < len(q.pool) {
				c = q.pool[n]
			} else {
				c = &cursor{}
				q.pool = append(q.pool, c)
			}
			weight := q.ix.sc.idf(int64(ti.df)) * float32(j-i)
			c.reset(q.ix, ti, weight)
			q.cursors = append(q.cursors, c)
		}
		i = j
	}
}

func (q *querier) topDocs(text string, topK int, exhaustive bool) []ScoredDoc {
	if topK == 0 {
		return nil
	}
	q.prepare(text)
	q.heap = q.heap[:0]
	if len(q.cursors) == 0 {
		return nil
	}
	if exhaustive {
		q.exhaustive(topK)
	} else {
		q.maxScore(topK)
	}
	res := make([]ScoredDoc, len(q.heap))
	for i := len(res) - 1; i >= 0; i-- {
		res[i] = q.heap.pop()
	}
	return res
}

// exhaustive scores every matching document.
func (q *querier) exhaustive(topK int) {
	for {
		doc := uint32(math.MaxUint32)
		for _, c := range q.cursors {
			doc = min(doc, c.doc)
		}
		if doc == noMoreDocs {
			return
		}
		var score float64
		for _, c := range q.cursors {
			if c.doc == doc {
				score += float64(c.score())
				c.next()
			}
		}
		q.offer(topK, doc, score)
	}
}

// offer adds a document to the top-k heap if it beats the current k-th.
// Documents arrive in increasing number, so on equal scores the earlier one
// stays, as in Lucene.
func (q *querier) offer(topK int, doc uint32, score float64) {
	if len(q.heap) < topK {
		q.heap.push(ScoredDoc{Doc: doc, Score: score})
	} else if score > q.heap[0].Score {
		q.heap[0] = ScoredDoc{Doc: doc, Score: score}
		q.heap.down(0)
	}
}

// maxScore is document-at-a-time MaxScore (Turtle and Flood 1995) with
// block-max bounds for the optional terms. Terms are sorted by their maximal
// score; the lowest ones whose bounds together cannot lift a document above
// the current k-th score are "non-essential": they are only probed for
// documents found through the essential terms, and probing stops as soon as
// the remaining bound (tightened by per-block maxima) cannot reach the
// threshold. The result is exactly the exhaustive top-k: a document is
// skipped only when an upper bound of its score is not above the k-th score,
// and on equal scores the earlier document wins anyway.
func (q *querier) maxScore(topK int) {
	cs := q.cursors
	slices.SortFunc(cs, func(a, b *cursor) int {
		switch {
		case a.maxScore < b.maxScore:
			return -1
		case a.maxScore > b.maxScore:
			return 1
		}
		return 0
	})
	// prefix[i] bounds the score from cursors 0..i.
	q.prefix = slices.Grow(q.prefix[:0], len(cs))[:len(cs)]
	prefix := q.prefix
	var s float64
	for i, c := range cs {
		s += c.maxScore
		prefix[i] = s
	}
	firstEssential := 0
	threshold := math.Inf(-1)
	for {
		if len(q.heap) == topK {
			threshold = q.heap[0].Score
			for firstEssential < len(cs) && prefix[firstEssential] <= threshold {
				firstEssential++
			}
			if firstEssential == len(cs) {
				return
			}
		}
		doc := noMoreDocs
		for _, c := range cs[firstEssential:] {
			doc = min(doc, c.doc)
		}
		if doc == noMoreDocs {
			return
		}
		var score float64
		for _, c := range cs[firstEssential:] {
			if c.doc == doc {
				score += float64(c.score())
				c.next()
			}
		}
		for i := firstEssential - 1; i >= 0; i-- {
			if score+prefix[i] <= threshold {
				break
			}
			c := cs[i]
			bm := c.blockMax(doc)
			if bm < 0 {
				continue
			}
			if score+prefix[i]-c.maxScore+bm <= threshold {
				continue
			}
			c.advance(doc)
			if c.doc == doc {
				score += float64(c.score())
			}
		}
		q.offer(topK, doc, score)
	}
}

const noMoreDocs uint32 = math.MaxUint32

// cursor walks one posting list block by block.
type cursor struct {
	ix         *Index
	weight     float32
	boundScale float64 // turns a stored block maximum into one for this weight
	maxScore   float64
	df         int
	firstBlock int
	numBlocks  int
	block      int // current block, relative to firstBlock
	decoded    int // block decoded into docs/tfs, -1 if none
	pos, n     int
	doc        uint32
	docs       [blockSize]uint32
	tfs        [blockSize]uint32
}

func (c *cursor) reset(ix *Index, ti termInfo, weight float32) {
	c.ix, c.weight = ix, weight
	c.boundScale = float64(weight) / float64(ix.sc.idf(int64(ti.df))) * (1 + 1e-6)
	c.df = int(ti.df)
	c.firstBlock = int(ti.firstBlock)
	c.numBlocks = (c.df + blockSize - 1) / blockSize
	c.maxScore = 0
	for b := range c.numBlocks {
		c.maxScore = max(c.maxScore, c.blockMaxAt(b))
	}
	c.block, c.decoded = 0, -1
	c.decode(0)
}

func (c *cursor) blockRec(b int) []byte {
	return c.ix.blocks[(c.firstBlock+b)*blockRecSize:]
}

func (c *cursor) blockLast(b int) uint32 { return binary.LittleEndian.Uint32(c.blockRec(b)) }

// blockMaxAt is the largest score of block b for this query's weight; the
// stored maximum is for weight idf, and scores scale linearly with weight up
// to float rounding, which the tiny margin covers.
func (c *cursor) blockMaxAt(b int) float64 {
	stored := math.Float32frombits(binary.LittleEndian.Uint32(c.blockRec(b)[4:]))
	return float64(stored) * c.boundScale
}

// decode loads block b; the first doc gap is relative to the previous block's last doc.
func (c *cursor) decode(b int) {
	c.block = b
	if b >= c.numBlocks {
		c.doc = noMoreDocs
		return
	}
	if c.decoded != b {
		off := binary.LittleEndian.Uint64(c.blockRec(b)[8:])
		data := c.ix.posts[off:]
		n := min(blockSize, c.df-b*blockSize)
		var prev uint32
		if b > 0 {
			prev = c.blockLast(b - 1)
		}
		for i := range n {
			d, k := binary.Uvarint(data)
			if k <= 0 {
				// A damaged postings file; treat the list as ending here.
				n = i
				break
			}
			data = data[k:]
			f, k := binary.Uvarint(data)
			if k <= 0 {
				n = i
				break
			}
			data = data[k:]
			prev += uint32(d)
			if uint64(prev) >= uint64(len(c.ix.norms)) {
				// A damaged postings file; treat the list as ending here.
				n = i
				break
			}
			c.docs[i], c.tfs[i] = prev, uint32(f)
		}
		c.n, c.decoded = n, b
	}
	c.pos = 0
	if c.n == 0 {
		c.doc = noMoreDocs
		return
	}
	c.doc = c.docs[0]
}

func (c *cursor) next() {
	c.pos++
	if c.pos < c.n {
		c.doc = c.docs[c.pos]
		return
	}
	c.decode(c.block + 1)
}

// advance moves to the first doc >= target.
func (c *cursor) advance(target uint32) {
	if c.doc >= target {
		return
	}
	if c.blockLast(c.block) < target {
		b := c.block + 1
		for b < c.numBlocks && c.blockLast(b) < target {
			b++
		}
		c.decode(b)
		if c.doc == noMoreDocs {
			return
		}
	}
	for c.pos < c.n && c.docs[c.pos] < target {
		c.pos++
	}
	if c.pos < c.n {
		c.doc = c.docs[c.pos]
	} else {
		c.decode(c.block + 1)
	}
}

// blockMax returns the score bound of the block that would hold target, or
// -1 when the list has no doc >= target.
func (c *cursor) blockMax(target uint32) float64 {
	if c.doc == noMoreDocs {
		return -1
	}
	b := c.block
	for b < c.numBlocks && c.blockLast(b) < target {
		b++
	}
	if b >= c.numBlocks {
		return -1
	}
	return c.blockMaxAt(b)
}

func (c *cursor) score() float32 {
	return c.ix.sc.score(c.weight, c.tfs[c.pos], c.ix.norms[c.doc])
}

// topHeap is a min-heap of the current best documents: the root is the
// weakest, i.e. lowest score, and among equal scores the latest document.
type topHeap []ScoredDoc

func (h topHeap) less(i, j int) bool {
	if h[i].Score != h[j].Score {
		return h[i].Score < h[j].Score
	}
	return h[i].Doc > h[j].Doc
}

func (h *topHeap) push(x ScoredDoc) {
	*h = append(*h, x)
	for i := len(*h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		(*h)[i], (*h)[parent] = (*h)[parent], (*h)[i]
		i = parent
	}
}

func (h *topHeap) pop() ScoredDoc {
	old := *h
	x := old[0]
	old[0] = old[len(old)-1]
	*h = old[:len(old)-1]
	h.down(0)
	return x
}

func (h topHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
