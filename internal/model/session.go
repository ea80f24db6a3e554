package model

import (
	"context"
	"fmt"
	"slices"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Session generates as Model.Generate does, but keeps the key/value cache
// of every sequence between calls. The agent loop generates a turn, appends
// the search results to each trajectory and generates again: each prompt of
// the next call begins with a sequence the session already holds (its
// prompt and generated tokens), so only the tokens after that prefix — the
// last sampled token and the inserted results — run through the model, and
// the rest is read from the cache.
//
// A prompt may share its prefix with any kept sequence, or with none (then
// it is prefilled as by Generate, once for all its copies in the request);
// the keys and values of a prefix depend on nothing after it, so reuse
// changes the result only by floating-point rounding. A Session is not safe
// for concurrent use; Close releases its caches.
type Session struct {
	m       *Model
	batches []*batchCache
	stats   PrefixStats
}

// PrefixStats counts the prompt tokens of a session's calls: Reused were
// read from kept caches, Computed ran through the model.
type PrefixStats struct {
	Reused, Computed int
}

// Stats returns the counts over every call so far.
func (s *Session) Stats() PrefixStats { return s.stats }

// NewSession starts a session with no kept sequences.
func (m *Model) NewSession() *Session { return &Session{m: m} }

// batchCache is the key/value cache of one generation batch.
type batchCache struct {
	rows, slots int
	valid       []bool            // [rows*slots]: the slot holds a token of its row
	caches      []*tensors.Tensor // per layer keys [rows, kv_heads, slots, head_dim], then values [rows, kv_heads, head_dim, slots]
	// seqs[j] is row j's sequence (prompt and generated tokens); its first
	// cached[j] tokens are in the cache, in slot order. Padding rows have
	// none.
	seqs   [][]int32
	cached []int
}

func newBatchCache(n, rows, slots int) *batchCache {
	return &batchCache{rows: rows, slots: slots, valid: make([]bool, rows*slots),
		seqs: make([][]int32, n), cached: make([]int, n)}
}

// free releases the cache's device memory now rather than at garbage
// collection.
func (b *batchCache) free() {
	if b == nil {
		return
	}
	for _, t := range b.caches {
		_ = t.FinalizeAll()
	}
	b.caches = nil
}

// reuse says where each prompt of a batch starts from: row row[j] of cache
// from, whose first keep[j] tokens equal the prompt's.
type reuse struct {
	from *batchCache
	row  []int
	keep []int
}

// prefixMatch says where a prompt starts from: the first keep tokens of
// row row of kept batch batch (-1: no kept row shares a token).
type prefixMatch struct{ batch, row, keep int }

// Generate continues every prompt, reusing the cached keys and values of
// the longest prefix each prompt shares with a kept sequence. The
// sequences of this call replace the kept ones.
func (s *Session) Generate(ctx context.Context, req GenerateRequest) ([]Generation, error) {
	m := s.m
	if err := m.checkRequest(&req); err != nil {
		return nil, err
	}
	matches := make([]prefixMatch, len(req.Prompts))
	for i, p := range req.Prompts {
		matches[i] = s.longestPrefix(p)
	}
	if err := s.prefillRepeats(&req, matches); err != nil {
		s.Close()
		return nil, err
	}
	// Group the prompts by the kept batch they extend (-1: none).
	groups := map[int]*reuse{}
	members := map[int][]int{}
	var order []int
	for i, p := range req.Prompts {
		mt := matches[i]
		if groups[mt.batch] == nil {
			groups[mt.batch] = &reuse{}
			order = append(order, mt.batch)
		}
		if mt.batch >= 0 {
			groups[mt.batch].from = s.batches[mt.batch]
			groups[mt.batch].row = append(groups[mt.batch].row, mt.row)
			groups[mt.batch].keep = append(groups[mt.batch].keep, mt.keep)
		}
		members[mt.batch] = append(members[mt.batch], i)
		s.stats.Reused += mt.keep
		s.stats.Computed += len(p) - mt.keep
	}

	out := make([]Generation, len(req.Prompts))
	var kept []*batchCache
	fail := func(err error) ([]Generation, error) {
		for _, b := range kept {
			b.free()
		}
		s.Close()
		return nil, err
	}
	for _, g := range order {
		lo := 0 // position of the batch's first prompt in the group
		for idx := range slices.Chunk(members[g], m.maxBatch) {
			var from *reuse
			if g >= 0 {
				hi := lo + len(idx)
				from = &reuse{from: groups[g].from, row: groups[g].row[lo:hi], keep: groups[g].keep[lo:hi]}
			}
			gens, b, err := m.generateBatch(ctx, &req, idx, from)
			if err != nil {
				return fail(err)
			}
			kept = append(kept, b)
			for j, i := range idx {
				out[i] = gens[j]
			}
			lo += len(idx)
		}
	}
	s.Close()
	s.batches = kept
	return out, nil
}

// prefillRepeats runs once every prompt that occurs more than once in the
// request and extends no kept sequence — the rollouts of one question —
// and keeps it, all but its last token, as a kept sequence: each copy then
// starts from the cache like a continuing sequence and runs one token. The
// copies' matches are set to it.
func (s *Session) prefillRepeats(req *GenerateRequest, matches []prefixMatch) error {
	copies := map[string][]int{}
	var keys []string
	for i, p := range req.Prompts {
		if len(p) < 2 || matches[i].batch >= 0 {
			continue
		}
		key := promptKey(p)
		if copies[key] == nil {
			keys = append(keys, key)
		}
		copies[key] = append(copies[key], i)
	}
	var repeated [][]int32 // prefixes, in order of first occurrence
	var owners [][]int     // the prompts each prefix serves
	for _, key := range keys {
		if c := copies[key]; len(c) > 1 {
			p := req.Prompts[c[0]]
			repeated = append(repeated, p[:len(p)-1])
			owners = append(owners, c)
		}
	}
	prefixes := GenerateRequest{Prompts: repeated, MaxNewTokens: 1}
	for idx := range slices.Chunk(indices(len(repeated)), s.m.maxBatch) {
		b, _, _, err := s.m.prefill(&prefixes, idx)
		if err != nil {
			return err
		}
		s.batches = append(s.batches, b)
		for row, r := range idx {
			s.stats.Computed += len(repeated[r])
			for _, i := range owners[r] {
				matches[i] = prefixMatch{batch: len(s.batches) - 1, row: row, keep: len(repeated[r])}
			}
		}
	}
	return nil
}

// promptKey is a map key holding a prompt's ids.
func promptKey(p []int32) string {
	b := make([]byte, 0, 4*len(p))
	for _, id := range p {
		b = append(b, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	}
	return string(b)
}

// longestPrefix finds the kept row whose cached tokens share the longest
// prefix with p. At least the last token of p is left to run, since its
// logits are needed.
func (s *Session) longestPrefix(p []int32) prefixMatch {
	best := prefixMatch{batch: -1, row: -1}
	for g, b := range s.batches {
		for r, seq := range b.seqs {
			n := min(b.cached[r], len(p)-1, len(seq))
			if n <= best.keep {
				continue
			}
			k := 0
			for k < n && seq[k] == p[k] {
				k++
			}
			if k > best.keep {
				best = prefixMatch{batch: g, row: r, keep: k}
			}
		}
	}
	return best
}

// Close releases the kept caches; the session may be used again and then
// starts with no kept sequences.
func (s *Session) Close() {
	for _, b := range s.batches {
		b.free()
	}
	s.batches = nil
}

// extend starts a batch from kept rows: it gathers each row's first keep
// cached tokens to the front of a cache sized for this call, then runs the
// rest of each prompt as one left-padded chunk after them.
func (m *Model) extend(req *GenerateRequest, idx []int, from *reuse) (*batchCache, []float32, int, error) {
	old := from.from
	maxKeep, maxNew := 0, 0
	for j, i := range idx {
		maxKeep = max(maxKeep, from.keep[j])
		maxNew = max(maxNew, len(req.Prompts[i])-from.keep[j])
	}
	rows := bucket(len(idx), 1)
	chunkLen := bucket(maxNew, 16)
	b := newBatchCache(len(idx), rows, bucket(maxKeep+chunkLen+req.MaxNewTokens, 16))

	// where[j, k] = (old row, old slot) of new slot k of row j. Slots past a
	// row's kept tokens read row 0 slot 0 and stay masked.
	where := make([]int32, rows*b.slots*2)
	for j := range idx {
		r, k := from.row[j], 0
		for slot := 0; slot < old.slots && k < from.keep[j]; slot++ {
			if old.valid[r*old.slots+slot] {
				at := (j*b.slots + k) * 2
				where[at], where[at+1] = int32(r), int32(slot)
				b.valid[j*b.slots+k] = true
				k++
			}
		}
		if k != from.keep[j] {
			return nil, nil, 0, fmt.Errorf("generate: kept row %d has %d cached tokens, want %d", r, k, from.keep[j])
		}
	}
	caches, err := m.runGather(where, rows, b.slots, old.caches)
	if err != nil {
		return nil, nil, 0, err
	}

	ids := make([]int32, rows*chunkLen)
	positions := make([]int32, rows*chunkLen)
	for j, i := range idx {
		p, keep := req.Prompts[i], from.keep[j]
		fresh := p[keep:]
		pad := chunkLen - len(fresh)
		copy(ids[j*chunkLen+pad:], fresh)
		for t := range fresh {
			positions[j*chunkLen+pad+t] = int32(keep + t)
			b.valid[j*b.slots+maxKeep+pad+t] = true
		}
		b.seqs[j] = slices.Clone(p)
		b.cached[j] = len(p)
	}
	logits, caches, err := m.runStep(ids, positions, b.valid, maxKeep, caches, rows, chunkLen, b.slots)
	if err != nil {
		return nil, nil, 0, err
	}
	b.caches = caches
	return b, logits, maxKeep + chunkLen, nil
}

// gatherGraph builds new caches of B' rows and S' slots from old ones
// (keys of every layer, then values): in[0] [B', S', 2] holds the (row,
// slot) each new slot reads.
func (m *Model) gatherGraph(_ *mlctx.Context, in []*Node) []*Node {
	layers := m.Config.NumHiddenLayers
	out := make([]*Node, len(in)-1)
	for i, c := range in[1:] {
		// To [B, S, kv_heads, head_dim], gather, and back.
		to, back := []int{0, 2, 1, 3}, []int{0, 2, 1, 3} // keys
		if i >= layers {
			to, back = []int{0, 3, 1, 2}, []int{0, 2, 3, 1} // values
		}
		out[i] = TransposeAllAxes(Gather(TransposeAllAxes(c, to...), in[0]), back...)
	}
	return out
}

func (m *Model) runGather(where []int32, rows, slots int, caches []*tensors.Tensor) ([]*tensors.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	args := []any{tensors.FromFlatDataAndDimensions(where, rows, slots, 2)}
	for _, c := range caches {
		args = append(args, c)
	}
	old := caches[0].Shape().Dimensions // [rows, kv_heads, slots, head_dim]
	out, err := m.gatherRun.run(shapeKey(old[0], old[2], rows, slots), args...)
	if err != nil {
		return nil, fmt.Errorf("generate: gather cache: %w", err)
	}
	return out, nil
}
