package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Finish reasons of a Generation.
const (
	FinishStop   = "stop"
	FinishEOS    = "eos"
	FinishLength = "length"
	// FinishCancelled: the row's RowSettings.Cancelled reported true.
	FinishCancelled = "cancelled"
)

// Generate continues every prompt. Prompts are left-padded into batches of
// bucketed shapes (batch and length rounded up so that few programs get
// compiled); the prompt is run once to fill a KV cache, then one token per
// step is decoded for the whole batch. Sequences finish on an EOS id, on a
// stop string in their decoded new text, or at MaxNewTokens; the batch stops
// as soon as every sequence has finished.
//
// Rotary positions count real tokens only (the first non-padding token is at
// position 0), as transformers' generate does with an attention mask.
func (m *Model) Generate(ctx context.Context, req GenerateRequest) ([]Generation, error) {
	if err := m.checkRequest(&req); err != nil {
		return nil, err
	}
	out := make([]Generation, 0, len(req.Prompts))
	for idx := range slices.Chunk(indices(len(req.Prompts)), m.maxBatch) {
		gens, cache, err := m.generateBatch(ctx, &req, idx, nil)
		if err != nil {
			return nil, err
		}
		cache.free()
		out = append(out, gens...)
	}
	return out, nil
}

// indices returns 0, 1, …, n-1.
func indices(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func (m *Model) checkRequest(req *GenerateRequest) error {
	if req.MaxNewTokens <= 0 {
		return fmt.Errorf("generate: MaxNewTokens must be positive, got %d", req.MaxNewTokens)
	}
	if len(req.StopStrings) > 0 && req.Decode == nil {
		return fmt.Errorf("generate: StopStrings need a Decode function")
	}
	if req.TopP < 0 || req.TopP > 1 || req.TopK < 0 {
		return fmt.Errorf("generate: TopP must be in [0,1] and TopK >= 0, got %g and %d", req.TopP, req.TopK)
	}
	if req.Rows != nil && len(req.Rows) != len(req.Prompts) {
		return fmt.Errorf("generate: %d row settings for %d prompts", len(req.Rows), len(req.Prompts))
	}
	for i, r := range req.Rows {
		switch {
		case r.TopP < 0 || r.TopP > 1 || r.TopK < 0:
			return fmt.Errorf("generate: row %d: TopP must be in [0,1] and TopK >= 0, got %g and %d", i, r.TopP, r.TopK)
		case r.MaxNewTokens < 0 || r.MaxNewTokens > req.MaxNewTokens:
			return fmt.Errorf("generate: row %d: MaxNewTokens %d outside [0, %d] (0: the request's)", i, r.MaxNewTokens, req.MaxNewTokens)
		case len(r.StopStrings) > 0 && req.Decode == nil:
			return fmt.Errorf("generate: row %d: StopStrings need a Decode function", i)
		}
	}
	for i, p := range req.Prompts {
		if len(p) == 0 {
			return fmt.Errorf("generate: prompt %d is empty", i)
		}
	}
	if err := m.checkTokens("prompts", req.Prompts); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

// sampling is how one row draws its tokens.
type sampling struct {
	Temperature float32
	TopP        float32
	TopK        int
}

// rowState tracks one sequence of a generation batch.
type rowState struct {
	gen  Generation
	done bool
	rng  *rand.Rand
	pos  int32 // rotary position of the next token

	sampling  sampling
	maxNew    int      // token bound of this row
	stops     []string // stop strings of this row
	maxStop   int      // longest of stops, in bytes
	cancelled func() bool

	sampled        int32 // this step's token and its log-probability
	sampledLogProb float32
	fed            bool // the row took a token this step, to be written to the cache
}

// sampleRows draws the next token of every unfinished row, rows in
// parallel: with a large vocabulary the softmax and nucleus work per row
// costs as much as a decode step on a GPU.
func sampleRows(states []*rowState, logits []float32, vocab int) {
	workers := min(runtime.GOMAXPROCS(0), len(states))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := w; b < len(states); b += workers {
				if st := states[b]; !st.done {
					st.sampled, st.sampledLogProb = sampleToken(logits[b*vocab:(b+1)*vocab], st.sampling, st.rng)
				}
			}
		}()
	}
	wg.Wait()
}

// generateBatch continues the prompts req.Prompts[idx] (at most maxBatch)
// as one batch and returns their generations with the batch's cache. With
// from == nil the prompts are prefilled into a fresh cache; otherwise the
// batch starts from rows of a kept cache (see Session).
func (m *Model) generateBatch(ctx context.Context, req *GenerateRequest, idx []int, from *reuse) ([]Generation, *batchCache, error) {
	var (
		b      *batchCache
		logits []float32
		start  int // first free slot
		err    error
	)
	if from == nil {
		b, logits, start, err = m.prefill(req, idx)
	} else {
		b, logits, start, err = m.extend(req, idx, from)
	}
	if err != nil {
		return nil, nil, err
	}
	states := make([]*rowState, len(idx))
	for j, i := range idx {
		states[j] = newRowState(req, i)
	}

	vocab := m.Config.VocabSize
	next := make([]int32, b.rows)
	nextPos := make([]int32, b.rows)
	for step := range req.MaxNewTokens {
		if err := ctxErr(ctx); err != nil {
			b.free()
			return nil, nil, err
		}
		active := 0
		for _, st := range states {
			if !st.done && st.cancelled != nil && st.cancelled() {
				st.done, st.gen.FinishReason = true, FinishCancelled
			}
		}
		sampleRows(states, logits, vocab)
		for j, st := range states {
			st.fed = false
			if st.done {
				continue
			}
			tok, lp := st.sampled, st.sampledLogProb
			st.gen.Tokens = append(st.gen.Tokens, tok)
			st.gen.LogProbs = append(st.gen.LogProbs, lp)
			if req.OnToken != nil {
				req.OnToken(idx[j], tok)
			}
			next[j], nextPos[j] = tok, st.pos
			st.pos++
			st.fed = true
			switch {
			case slices.Contains(req.EOSTokenIDs, tok):
				st.done, st.gen.FinishReason = true, FinishEOS
			case st.maxStop > 0 && hasStop(req.Decode, st.gen.Tokens, st.stops, st.maxStop):
				st.done, st.gen.FinishReason = true, FinishStop
			case len(st.gen.Tokens) == st.maxNew:
				st.done, st.gen.FinishReason = true, FinishLength
			default:
				active++
			}
		}
		if active == 0 {
			break
		}
		// Only the tokens just sampled enter the cache: a row that had
		// already finished leaves a masked hole, so that its cache holds
		// exactly its own sequence for a later turn.
		slot := start + step
		for j := range b.rows {
			b.valid[j*b.slots+slot] = j < len(states) && states[j].fed
		}
		logits, b.caches, err = m.runStep(next, nextPos, b.valid, slot, b.caches, b.rows, 1, b.slots)
		if err != nil {
			b.free()
			return nil, nil, err
		}
		for j, st := range states {
			if st.fed {
				b.cached[j]++
			}
		}
	}
	gens := make([]Generation, len(idx))
	for j, st := range states {
		gens[j] = st.gen
		b.seqs[j] = append(b.seqs[j], st.gen.Tokens...)
	}
	return gens, b, nil
}

// newRowState starts prompt i of req: its sampling settings, stop strings
// and token bound, from req.Rows[i] when set. Each row samples from its own
// stream, so a sequence's tokens do not depend on the other prompts in its
// batch.
func newRowState(req *GenerateRequest, i int) *rowState {
	st := &rowState{
		pos:      int32(len(req.Prompts[i])),
		rng:      newRowRNG(req.Seed, i),
		sampling: sampling{Temperature: req.Temperature, TopP: req.TopP, TopK: req.TopK},
		maxNew:   req.MaxNewTokens,
		stops:    req.StopStrings,
	}
	if req.Rows != nil {
		r := req.Rows[i]
		st.rng = newRowRNG(r.Seed, 0)
		st.sampling = sampling{Temperature: r.Temperature, TopP: r.TopP, TopK: r.TopK}
		if r.MaxNewTokens > 0 {
			st.maxNew = r.MaxNewTokens
		}
		st.stops = append(slices.Clone(req.StopStrings), r.StopStrings...)
		st.cancelled = r.Cancelled
	}
	for _, s := range st.stops {
		st.maxStop = max(st.maxStop, len(s))
	}
	return st
}

// prefill runs the prompts req.Prompts[idx], left-padded, into a fresh
// cache with room for MaxNewTokens more tokens.
func (m *Model) prefill(req *GenerateRequest, idx []int) (*batchCache, []float32, int, error) {
	maxPrompt := 0
	for _, i := range idx {
		maxPrompt = max(maxPrompt, len(req.Prompts[i]))
	}
	rows := bucket(len(idx), 1)
	promptLen := bucket(maxPrompt, 16)
	b := newBatchCache(len(idx), rows, bucket(promptLen+req.MaxNewTokens, 16))
	ids := make([]int32, rows*promptLen)
	positions := make([]int32, rows*promptLen)
	for j, i := range idx {
		p := req.Prompts[i]
		pad := promptLen - len(p)
		copy(ids[j*promptLen+pad:], p)
		for t := range p {
			positions[j*promptLen+pad+t] = int32(t)
			b.valid[j*b.slots+pad+t] = true
		}
		b.seqs[j] = slices.Clone(p)
		b.cached[j] = len(p)
	}
	logits, caches, err := m.runPrefill(ids, positions, b.valid, rows, promptLen, b.slots)
	if err != nil {
		return nil, nil, 0, err
	}
	b.caches = caches
	return b, logits, promptLen, nil
}

// hasStop reports whether the decoded tail of the new tokens contains a
// stop string. Only the last maxStop+4 tokens are decoded: every token
// decodes to at least one byte, so a stop string completed by the newest
// token lies within them.
func hasStop(decode func([]int32) string, tokens []int32, stops []string, maxStop int) bool {
	tail := tokens[max(0, len(tokens)-maxStop-4):]
	text := decode(tail)
	for _, s := range stops {
		if s != "" && strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// sampleToken picks the next token from raw logits and returns it with its
// log-probability under the model's distribution at the sampling
// temperature, softmax(logits/T), before top-k and top-p (as verl scores
// rollouts); greedy decoding (T <= 0) reports the distribution at T = 1.
func sampleToken(logits []float32, req sampling, rng *rand.Rand) (int32, float32) {
	maxL := float32(math.Inf(-1))
	argmax := 0
	for i, v := range logits {
		if v > maxL {
			maxL, argmax = v, i
		}
	}
	invT := 1.0
	if req.Temperature > 0 {
		invT = 1 / float64(req.Temperature)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v-maxL) * invT)
	}
	lse := math.Log(sum)
	logp := func(i int) float32 { return float32(float64(logits[i]-maxL)*invT - lse) }
	if req.Temperature <= 0 {
		return int32(argmax), logp(argmax)
	}

	// Temperature, then top-k, then top-p, as transformers orders its
	// logits processors.
	weight := func(i int) float64 { return math.Exp((float64(logits[i]) - float64(maxL)) * invT) }
	var (
		cand []rank
		w    []float64 // weights of every token, when already computed
	)
	switch {
	case req.TopK > 0 && req.TopK < len(logits):
		cand = topK(logits, req.TopK)
	case req.TopP > 0 && req.TopP < 1:
		cand, w = nucleusCandidates(logits, maxL, invT, float64(req.TopP))
	}
	if cand == nil {
		var total float64
		for i := range logits {
			total += weight(i)
		}
		u := rng.Float64() * total
		for i := range logits {
			u -= weight(i)
			if u <= 0 {
				return int32(i), logp(i)
			}
		}
		return int32(argmax), logp(argmax)
	}
	slices.Sort(cand)
	cw := make([]float64, len(cand))
	var total float64
	for j, c := range cand {
		if w != nil {
			cw[j] = w[c.id()]
		} else {
			cw[j] = weight(int(c.id()))
		}
		total += cw[j]
	}
	if req.TopP > 0 && req.TopP < 1 {
		// Keep the smallest prefix whose mass reaches TopP.
		var cum float64
		for j := range cw {
			cum += cw[j] / total
			if cum >= float64(req.TopP) {
				cw, cand = cw[:j+1], cand[:j+1]
				break
			}
		}
		total = 0
		for _, x := range cw {
			total += x
		}
	}
	u := rng.Float64() * total
	for j, c := range cand {
		u -= cw[j]
		if u <= 0 {
			return c.id(), logp(int(c.id()))
		}
	}
	last := cand[len(cand)-1].id()
	return last, logp(int(last))
}

// rank is a token's sort key: ascending ranks are descending logits, ties
// by ascending id (−0 ranks as +0), so that candidates sort as plain
// integers.
type rank uint64

func rankOf(logit float32, id int) rank {
	if logit == 0 {
		logit = 0 // −0
	}
	b := math.Float32bits(logit)
	if b&(1<<31) != 0 {
		b = ^b // negative: larger magnitude, smaller value
	} else {
		b |= 1 << 31
	}
	// b now increases with the logit; ^b decreases.
	return rank(uint64(^b)<<32 | uint64(uint32(id)))
}

func (r rank) id() int32 { return int32(uint32(r)) }

// topK returns the k best tokens (unordered) by a partial selection:
// quickselect around median-of-three pivots, O(vocabulary) on average.
func topK(logits []float32, k int) []rank {
	all := make([]rank, len(logits))
	for i, v := range logits {
		all[i] = rankOf(v, i)
	}
	lo, hi := 0, len(all) // the k-th best lies in all[lo:hi]
	for hi-lo > 1 {
		a, b, c := all[lo], all[lo+(hi-lo)/2], all[hi-1]
		pivot := max(min(a, b), min(max(a, b), c)) // median of three
		// Three-way partition of all[lo:hi]: better than, equal to, worse than the pivot.
		lt, i, gt := lo, lo, hi
		for i < gt {
			switch x := all[i]; {
			case x < pivot:
				all[lt], all[i] = all[i], all[lt]
				lt++
				i++
			case x > pivot:
				gt--
				all[i], all[gt] = all[gt], all[i]
			default:
				i++
			}
		}
		switch {
		case k <= lt:
			hi = lt
		case k >= gt:
			lo = gt
		default:
			return all[:k]
		}
	}
	return all[:k]
}

// nucleusCandidates returns a set of tokens that contains the top-p nucleus
// without sorting the whole vocabulary: every token at or above a
// probability threshold ranks above every token below it, so once the
// tokens above the threshold hold mass >= p, the nucleus lies among them.
// It also returns the weight of every token.
func nucleusCandidates(logits []float32, maxL float32, invT, p float64) ([]rank, []float64) {
	var total float64
	w := make([]float64, len(logits))
	for i, v := range logits {
		w[i] = math.Exp((float64(v) - float64(maxL)) * invT)
		total += w[i]
	}
	for threshold := 1e-3; ; threshold /= 1000 {
		var cand []rank
		var mass float64
		for i, x := range w {
			if x >= threshold || threshold < 1e-30 {
				cand = append(cand, rankOf(logits[i], i))
				mass += x
			}
		}
		if mass/total >= p || threshold < 1e-30 {
			return cand, w
		}
	}
}

// prefillGraph runs the left-padded prompts into a fresh cache.
func (m *Model) prefillGraph(_ *mlctx.Context, in []*Node) []*Node {
	ids, positions, valid := in[0], in[1], in[2]
	return m.stepGraph(ids, positions, valid, Scalar(ids.Graph(), dtypes.Int32, 0), nil, nil)
}

func (m *Model) decodeGraph(_ *mlctx.Context, in []*Node) []*Node {
	layers := m.Config.NumHiddenLayers
	return m.stepGraph(in[0], in[1], in[2], in[3], in[4:4+layers], in[4+layers:4+2*layers])
}

// stepGraph runs a chunk against the cache and returns the logits of the
// chunk's last token [B, V] followed by the updated keys and values.
func (m *Model) stepGraph(ids, positions, valid, start *Node, cacheK, cacheV []*Node) []*Node {
	defer forgetDots(ids.Graph())
	d := m.decoderFor(ids.Graph())
	d.splitSmallDots = m.backend.String() == simplego.BackendName
	hidden, newK, newV := d.forward(chunk{ids: ids, positions: positions, keyValid: valid, start: start,
		cacheK: cacheK, cacheV: cacheV})
	length := ids.Shape().Dimensions[1]
	last := SliceAxis(hidden, 1, AxisElem(length-1))
	logits := Squeeze(d.logits(last), 1)
	return append(append([]*Node{logits}, newK...), newV...)
}

func (m *Model) runPrefill(ids, positions []int32, valid []bool, rows, promptLen, slots int) ([]float32, []*tensors.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out, err := m.prefillRun.run(shapeKey(rows, promptLen, slots),
		tensors.FromFlatDataAndDimensions(ids, rows, promptLen),
		tensors.FromFlatDataAndDimensions(positions, rows, promptLen),
		tensors.FromFlatDataAndDimensions(valid, rows, slots))
	if err != nil {
		return nil, nil, fmt.Errorf("generate: prefill: %w", err)
	}
	logits, err := tensors.CopyFlatData[float32](out[0])
	if err != nil {
		return nil, nil, err
	}
	return logits, out[1:], nil
}

// runStep runs a chunk of chunkLen tokens per row (1 when decoding) at slot
// start of the caches and returns the logits of each row's last token with
// the updated caches.
func (m *Model) runStep(ids, positions []int32, valid []bool, start int, caches []*tensors.Tensor,
	rows, chunkLen, slots int) ([]float32, []*tensors.Tensor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	args := []any{
		tensors.FromFlatDataAndDimensions(ids, rows, chunkLen),
		tensors.FromFlatDataAndDimensions(positions, rows, chunkLen),
		tensors.FromFlatDataAndDimensions(valid, rows, slots),
		tensors.FromScalar(int32(start)),
	}
	for _, c := range caches {
		// The cache is updated in place on devices that allow donation.
		if donated, err := DonateTensorBuffer(c, m.backend, 0); err == nil {
			args = append(args, donated)
		} else {
			args = append(args, c)
		}
	}
	// Chunks of several tokens (a session extending kept caches) come in
	// many more shapes than single decode steps; their programs are kept
	// apart so that they never evict the decode programs.
	progs := m.decodeRun
	if chunkLen > 1 {
		progs = m.extendRun
	}
	out, err := progs.run(shapeKey(rows, chunkLen, slots), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("generate: decode: %w", err)
	}
	logits, err := tensors.CopyFlatData[float32](out[0])
	if err != nil {
		return nil, nil, err
	}
	return logits, out[1:], nil
}

// newRowRNG is the sampling stream of request row row.
func newRowRNG(seed int64, row int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(row)))
}
