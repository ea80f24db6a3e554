package model

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
)

// Next-token log-probabilities and their gradients, in chunks of positions.
//
// Scoring a sequence needs the logits of every position, [B, T, V]: at a
// vocabulary of 152k and 8k tokens that is 5 GB per sequence in float32, and
// a training step keeps the softmax and the logits' gradient besides. The
// head therefore runs over the final hidden states C positions at a time
// (LoadOptions.LogProbChunkTokens): each chunk's logits are projected,
// reduced to log-probabilities and entropies and, in a training step, turned
// at once into the chunk's share of the gradient, so at most one chunk's
// [B, C, V] tensors are alive.
//
// A training step does not differentiate through the chunks (autodiff would
// keep every chunk's softmax alive until the backward pass). The losses are
// sums over tokens of a function of each token's own log-probability, so per
// chunk the head takes g = ∂loss/∂logp from the loss itself (by autodiff on
// the [B, C] log-probabilities only) and writes the gradient of the logits
// out by hand:
//
//	logp_t          = logit_t[target]/T − logsumexp(logit_t/T)
//	∂logp_t/∂logits = (onehot(target) − softmax(logit_t/T))/T
//	∂loss/∂hidden   = Σ_t g_t·(onehot − softmax)/T·W      (per position)
//	∂loss/∂W        = Σ_t (g_t·(onehot − softmax)/T)ᵀ·hidden_t
//
// with T the temperature the sequence was sampled at (1 when scoring a
// plain language-model loss).
//
// These enter the step's single Gradient call through the surrogate
// Σ hidden·sg(∂loss/∂hidden) + Σ W·sg(∂loss/∂W), whose gradient with respect
// to every parameter is the loss's: the decoder below the final norm is
// differentiated as before.
//
// Logits at position p predict token p+1. Within the head everything is
// indexed by position; the per-token inputs of a loss (mask, advantages,
// old and reference log-probs, which are indexed by token) are shifted one
// to the left to match, and the outputs shifted back.

// defaultLogProbChunk is LoadOptions.LogProbChunkTokens's default.
const defaultLogProbChunk = 512

// positionSpans splits positions 0..length-1 into [lo, hi) spans of at most
// chunk positions; chunk <= 0 gives one span.
func positionSpans(length, chunk int) [][2]int {
	if chunk <= 0 || chunk >= length {
		return [][2]int{{0, length}}
	}
	var out [][2]int
	for lo := 0; lo < length; lo += chunk {
		out = append(out, [2]int{lo, min(lo+chunk, length)})
	}
	return out
}

// toPositions shifts a token-indexed [B, T] input to position indexing:
// out[:, p] = x[:, p+1], and 0 at the last position (which predicts
// nothing).
func toPositions(x *Node) *Node {
	dims := x.Shape().Dimensions
	pad := Zeros(x.Graph(), shapeOf(x.DType(), dims[0], 1))
	if dims[1] == 1 {
		return pad
	}
	return Concatenate([]*Node{SliceAxis(x, 1, AxisRange(1, dims[1])), pad}, 1)
}

// toTokens shifts a position-indexed [B, T] result to token indexing:
// out[:, t] = x[:, t−1], and 0 for the first token (which nothing predicts).
func toTokens(x *Node) *Node {
	dims := x.Shape().Dimensions
	pad := Zeros(x.Graph(), shapeOf(x.DType(), dims[0], 1))
	if dims[1] == 1 {
		return pad
	}
	return Concatenate([]*Node{pad, SliceAxis(x, 1, AxisRange(0, dims[1]-1))}, 1)
}

// headWeight is the LM head [V, hidden] as stored (the embedding when tied).
func (d *decoder) headWeight() *Node {
	if d.cfg.TieWordEmbeddings {
		return d.weight(wEmbed)
	}
	return d.weight(wLMHead)
}

// chunkScores scores the positions of one chunk: h [B, C, hidden] (compute
// dtype), head [V, hidden] (compute dtype), targets [B, C] int32, invTemp
// [B] float32 (nil: 1). It returns logp and entropy [B, C] and the softmax
// [B, C, V] of logits·invTemp, all float32 and without gradient.
func chunkScores(h, head, targets, invTemp *Node) (logp, entropy, probs *Node) {
	g := h.Graph()
	batch, length := h.Shape().Dimensions[0], h.Shape().Dimensions[1]
	logits := StopGradient(ConvertDType(dot(h, []int{2}, nil, head, []int{1}, nil), dtypes.Float32))
	if invTemp != nil {
		logits = Mul(logits, Reshape(invTemp, batch, 1, 1))
	}
	vocab := logits.Shape().Dimensions[2]
	lse := logSumExp(logits) // [B, C, 1]
	// Pick logits[row, target] with (row, target) index pairs: a flat
	// row*vocab index would overflow int32 for large batches and vocabularies.
	n := batch * length
	pairs := Concatenate([]*Node{Iota(g, shapeOf(dtypes.Int32, n, 1), 0), Reshape(targets, n, 1)}, 1) // [N, 2]
	picked := Reshape(Gather(Reshape(logits, n, vocab), pairs), batch, length)
	lse2 := Reshape(lse, batch, length)
	logp = Sub(picked, lse2)
	probs = Exp(Sub(logits, lse))
	entropy = Sub(lse2, ReduceSum(Mul(probs, logits), -1))
	return logp, entropy, probs
}

// chunkOf returns positions [lo, hi) of a [B, T, …] tensor.
func chunkOf(x *Node, span [2]int) *Node {
	if span[0] == 0 && span[1] == x.Shape().Dimensions[1] {
		return x
	}
	return SliceAxis(x, 1, AxisRange(span[0], span[1]))
}

// headInputs are what every chunk of a pass shares.
type headInputs struct {
	hidden  *Node // [B, T, hidden] final-norm output, without gradient
	head    *Node // [V, hidden] in the compute dtype, without gradient
	targets *Node // [B, T] int32: the token each position predicts (0 at the end)
	invTemp *Node // [B] float32 inverse sampling temperatures; nil for 1
	spans   [][2]int
}

func (d *decoder) headInputs(hidden, ids, invTemp *Node, chunk int) headInputs {
	return headInputs{
		hidden:  StopGradient(hidden),
		head:    StopGradient(ConvertDType(d.headWeight(), d.compute)),
		targets: toPositions(ConvertDType(ids, dtypes.Int32)),
		invTemp: invTemp,
		spans:   positionSpans(ids.Shape().Dimensions[1], chunk),
	}
}

// scoreTokens returns logp [B, T] with logp[b, t] = log p(ids[b, t] |
// ids[b, <t]) and logp[b, 0] = 0, and the entropy [B, T] of the distribution
// that predicted token t (0 at t = 0), from the final-norm output hidden
// [B, T, hidden], chunk positions at a time (chunk <= 0: all at once). Row b
// is scored under softmax(logits·invTemp[b]) (invTemp nil: 1). Nothing is
// differentiable.
func (d *decoder) scoreTokens(hidden, ids, invTemp *Node, chunk int) (logp, entropy *Node) {
	hi := d.headInputs(hidden, ids, invTemp, chunk)
	var lps, ents []*Node
	for _, span := range hi.spans {
		lp, ent, _ := chunkScores(chunkOf(hi.hidden, span), hi.head, chunkOf(hi.targets, span), hi.invTemp)
		lps, ents = append(lps, lp), append(ents, ent)
	}
	return toTokens(concatPositions(lps)), toTokens(concatPositions(ents))
}

func concatPositions(parts []*Node) *Node {
	if len(parts) == 1 {
		return parts[0]
	}
	return Concatenate(parts, 1)
}

// headLoss applies loss to the next-token log-probs and entropies of the
// final-norm output hidden [B, T, hidden] under softmax(logits·invTemp[b])
// (invTemp [B], nil: 1), chunk positions at a time. in are
// the loss's inputs: [B, T] ones are indexed by token, anything else (the
// scalars) is passed to every chunk as is. The loss must be a sum over
// tokens of a function of each token's log-prob (and its inputs), and its
// report a list of such sums; the reports of the chunks are added up.
//
// It returns the report and a surrogate scalar whose gradient with respect
// to hidden and to the model's weights is the loss's (see the top of this
// file); its value means nothing. Without trainHead (the head weight is
// frozen, as under LoRA) the head's gradient is neither computed nor part
// of the surrogate.
func (d *decoder) headLoss(hidden, ids, invTemp *Node, in []*Node, loss lossFunc, chunk int, trainHead bool) (report []*Node, surrogate *Node) {
	hi := d.headInputs(hidden, ids, invTemp, chunk)
	positions := make([]*Node, len(in))
	for i, x := range in {
		positions[i] = x
		if x.Rank() == 2 {
			positions[i] = toPositions(x)
		}
	}
	g := hidden.Graph()
	var dHidden []*Node
	var dHead *Node
	for _, span := range hi.spans {
		h, targets := chunkOf(hi.hidden, span), chunkOf(hi.targets, span)
		logp, entropy, probs := chunkScores(h, hi.head, targets, hi.invTemp)
		chunkIn := make([]*Node, len(positions))
		for i, x := range positions {
			chunkIn[i] = x
			if x.Rank() == 2 {
				chunkIn[i] = chunkOf(x, span)
			}
		}
		l, rep := loss(logp, entropy, chunkIn)
		if report == nil {
			report = rep
		} else {
			for i := range report {
				report[i] = Add(report[i], rep[i])
			}
		}
		// ∂loss/∂logits = g·invTemp·(onehot(target) − softmax), g = ∂loss/∂logp.
		gLogp := StopGradient(Gradient(l, logp)[0]) // [B, C]
		if hi.invTemp != nil {
			gLogp = Mul(gLogp, ExpandAxes(hi.invTemp, -1))
		}
		dims := probs.Shape().Dimensions
		onehot := ConvertDType(Equal(Iota(g, shapeOf(dtypes.Int32, dims...), 2),
			BroadcastToDims(ExpandAxes(targets, -1), dims...)), dtypes.Float32)
		dLogits := ConvertDType(Mul(ExpandAxes(gLogp, -1), Sub(onehot, probs)), d.compute) // [B, C, V]
		dHidden = append(dHidden, dot(dLogits, []int{2}, nil, hi.head, []int{0}, nil))     // [B, C, hidden]
		if !trainHead {
			continue
		}
		dW := ConvertDType(dot(dLogits, []int{0, 1}, nil, h, []int{0, 1}, nil), dtypes.Float32) // [V, hidden]
		if dHead == nil {
			dHead = dW
		} else {
			dHead = Add(dHead, dW)
		}
	}
	dh := StopGradient(ConvertDType(concatPositions(dHidden), dtypes.Float32))
	surrogate = ReduceAllSum(Mul(ConvertDType(hidden, dtypes.Float32), dh))
	if trainHead {
		surrogate = Add(surrogate,
			ReduceAllSum(Mul(ConvertDType(d.headWeight(), dtypes.Float32), StopGradient(dHead))))
	}
	return report, surrogate
}
