package model

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
)

// The Llama decoder block, shared by every supported family. A family is a
// Llama block plus the differences its own file states (qwen2.go, qwen3.go).
//
//	x = x + o_proj(attention(rope(q_proj(norm(x))), rope(k_proj(norm(x))), v_proj(norm(x))))
//	x = x + down_proj(silu(gate_proj(norm(x))) * up_proj(norm(x)))
//
// Hugging Face weight names, with the shapes they must have ([out, in] for
// linear layers, as torch stores them):
const (
	wEmbed     = "model.embed_tokens.weight"                       // [vocab, hidden]
	wFinalNorm = "model.norm.weight"                               // [hidden]
	wLMHead    = "lm_head.weight"                                  // [vocab, hidden]; absent when tied
	wAttnNorm  = "model.layers.%d.input_layernorm.weight"          // [hidden]
	wQ         = "model.layers.%d.self_attn.q_proj.weight"         // [heads*head_dim, hidden]
	wK         = "model.layers.%d.self_attn.k_proj.weight"         // [kv_heads*head_dim, hidden]
	wV         = "model.layers.%d.self_attn.v_proj.weight"         // [kv_heads*head_dim, hidden]
	wO         = "model.layers.%d.self_attn.o_proj.weight"         // [hidden, heads*head_dim]
	wQBias     = "model.layers.%d.self_attn.q_proj.bias"           // [heads*head_dim]   (attention bias)
	wKBias     = "model.layers.%d.self_attn.k_proj.bias"           // [kv_heads*head_dim]
	wVBias     = "model.layers.%d.self_attn.v_proj.bias"           // [kv_heads*head_dim]
	wQNorm     = "model.layers.%d.self_attn.q_norm.weight"         // [head_dim]          (q/k norm)
	wKNorm     = "model.layers.%d.self_attn.k_norm.weight"         // [head_dim]
	wMLPNorm   = "model.layers.%d.post_attention_layernorm.weight" // [hidden]
	wGate      = "model.layers.%d.mlp.gate_proj.weight"            // [intermediate, hidden]
	wUp        = "model.layers.%d.mlp.up_proj.weight"              // [intermediate, hidden]
	wDown      = "model.layers.%d.mlp.down_proj.weight"            // [hidden, intermediate]
)

// architecture is what distinguishes one decoder family from another.
type architecture struct {
	hfClass string // transformers class written to config.json "architectures"
	// qkvBias reports whether q/k/v projections carry a bias.
	qkvBias func(c *Config) bool
	// qkNorm applies an RMSNorm over head_dim to queries and keys before
	// the rotary embedding.
	qkNorm bool
}

// llama is Meta's Llama 2/3 (and SmolLM, Mistral-style dense) decoder.
var llama = architecture{
	hfClass: "LlamaForCausalLM",
	qkvBias: func(c *Config) bool { return c.AttentionBias },
}

// architectures maps config.json model_type to its decoder.
var architectures = map[string]architecture{
	"llama": llama,
	"qwen2": qwen2,
	"qwen3": qwen3,
}

// weightSpec is one named parameter tensor.
type weightSpec struct {
	name  string
	shape []int
}

// weightSpecs lists every parameter of the model in a stable order, with
// Hugging Face names.
func (a architecture) weightSpecs(c *Config) []weightSpec {
	h, q, kv := c.HiddenSize, c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim
	specs := []weightSpec{{wEmbed, []int{c.VocabSize, h}}}
	for i := range c.NumHiddenLayers {
		l := func(pattern string, shape ...int) weightSpec {
			return weightSpec{fmt.Sprintf(pattern, i), shape}
		}
		specs = append(specs,
			l(wAttnNorm, h),
			l(wQ, q, h), l(wK, kv, h), l(wV, kv, h), l(wO, h, q))
		if a.qkvBias(c) {
			specs = append(specs, l(wQBias, q), l(wKBias, kv), l(wVBias, kv))
		}
		if a.qkNorm {
			specs = append(specs, l(wQNorm, c.HeadDim), l(wKNorm, c.HeadDim))
		}
		specs = append(specs,
			l(wMLPNorm, h),
			l(wGate, c.IntermediateSize, h), l(wUp, c.IntermediateSize, h), l(wDown, h, c.IntermediateSize))
	}
	specs = append(specs, weightSpec{wFinalNorm, []int{h}})
	if !c.TieWordEmbeddings {
		specs = append(specs, weightSpec{wLMHead, []int{c.VocabSize, h}})
	}
	return specs
}

// chunk is one forward pass over C new tokens per row, in one of three modes:
//
//   - plain (training, scoring): keyValid is [B, C], the chunk attends to
//     itself;
//   - prefill: keyValid is [B, S] with S > C; the chunk fills slots 0..C-1 of
//     a fresh cache of S slots, returned as the new cache;
//   - decode: cacheK/cacheV are given; the chunk is written at slots
//     start..start+C-1 (C == 1 when sampling one token at a time, C > 1
//     when a kept cache is extended with new tokens, such as tool results).
//
// Token i of the chunk attends to every valid slot j <= start+i.
type chunk struct {
	ids       *Node   // [B, C] int32
	positions *Node   // [B, C] int32 rotary positions
	keyValid  *Node   // [B, S] bool: slot holds a real (non-padding) token
	start     *Node   // scalar int32, nil without a cache
	cacheK    []*Node // per layer keys [B, kv_heads, S, head_dim]
	cacheV    []*Node // per layer values [B, kv_heads, head_dim, S]; nil without a cache
}

// decoder builds the graph of the transformer with the model's weights.
type decoder struct {
	cfg     *Config
	arch    architecture
	compute dtypes.DType // dtype of matmuls and activations
	weight  func(name string) *Node
	invFreq []float32
	// inPlaceCache writes decoded keys and values with DynamicUpdateSlice
	// (backends that have it, XLA); otherwise with a select over the slots.
	inPlaceCache bool
	// splitSmallDots runs small projections as two halves at once (see
	// splitDot): set for generation graphs on the pure-Go backend.
	splitSmallDots bool
	// lora, when set, adds low-rank adapters to the projections it names
	// (lora.go); nil runs the base model.
	lora *adapterGraph
}

func (d *decoder) w(pattern string, layer int) *Node {
	return d.weight(fmt.Sprintf(pattern, layer))
}

// linear computes x·Wᵀ (+ b) over the last axis.
func (d *decoder) linear(x, w, b *Node) *Node {
	y := d.project(x, w)
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// rmsNorm normalises in float32 and scales in the compute dtype, as
// transformers' LlamaRMSNorm does.
func (d *decoder) rmsNorm(x, w *Node) *Node {
	x32 := ConvertDType(x, dtypes.Float32)
	variance := ReduceAndKeep(Square(x32), ReduceMean, -1)
	x32 = Div(x32, Sqrt(AddScalar(variance, d.cfg.RMSNormEps))) // Rsqrt has no gradient in GoMLX
	return Mul(ConvertDType(ExpandLeftToRank(w, x.Rank()), d.compute), ConvertDType(x32, d.compute))
}

// rope rotates x [B, C, heads, head_dim] by the positions, with
// transformers' rotate_half layout: rotate_half(x) = (−x2, x1) for the
// halves x1, x2. The half swap is a product with a signed permutation
// matrix (exact: one ±1 term per output) rather than slices, so its
// gradient needs no Pad or Reverse, which the pure-Go backend lacks.
func (d *decoder) rope(x, cos, sin *Node) *Node {
	hd := d.cfg.HeadDim
	half := hd / 2
	perm := make([][]float32, hd)
	for i := range perm {
		perm[i] = make([]float32, hd)
	}
	for e := range half {
		perm[e+half][e] = -1 // rotated[e] = −x[e+half]
		perm[e][e+half] = 1  // rotated[e+half] = x[e]
	}
	rotated := dot(x, []int{3}, nil, ConvertDType(Const(x.Graph(), perm), x.DType()), []int{0}, nil)
	return Add(Mul(x, cos), Mul(rotated, sin))
}

// ropeTables returns cos and sin [B, C, 1, head_dim] computed in float32.
func (d *decoder) ropeTables(positions *Node) (cos, sin *Node) {
	g := positions.Graph()
	inv := Const(g, d.invFreq)                                     // [hd/2]
	pos := ExpandAxes(ConvertDType(positions, dtypes.Float32), -1) // [B, C, 1]
	freqs := Mul(pos, ExpandLeftToRank(inv, 3))                    // [B, C, hd/2]
	emb := ExpandAxes(Concatenate([]*Node{freqs, freqs}, -1), 2)   // [B, C, 1, hd]
	return ConvertDType(Cos(emb), d.compute), ConvertDType(Sin(emb), d.compute)
}

// forward returns the final hidden states [B, C, hidden] and, with a cache,
// the updated caches.
func (d *decoder) forward(in chunk) (hidden *Node, newK, newV []*Node) {
	lc := d.layerContext(in.positions, in.keyValid, in.start)
	if in.cacheK != nil || lc.slots > lc.length {
		lc.kv = func(i int, k, v *Node) (keys, values *Node) {
			keys, values = d.cacheKV(in, lc, i, k, v)
			newK, newV = append(newK, keys), append(newV, values)
			return keys, values
		}
	}
	x := d.embed(in.ids) // [B, C, hidden]
	for i := range d.cfg.NumHiddenLayers {
		x = d.layer(i, x, lc)
	}
	return d.rmsNorm(x, d.weight(wFinalNorm)), newK, newV
}

// embed looks the token ids [B, C] up in the embedding table.
func (d *decoder) embed(ids *Node) *Node {
	return Gather(ConvertDType(d.weight(wEmbed), d.compute), ExpandAxes(ids, -1))
}

// layerContext is what every layer of a pass shares: the rotary tables, the
// attention mask and, with a cache, how a layer's keys and values enter it.
type layerContext struct {
	batch, length, slots int   // B, C and S
	cos, sin             *Node // [B, C, 1, head_dim]
	keyPos               *Node // [S] int32: slot indices
	// allowed [B, kv, C, G, S]: causal and not padding; visible (same
	// shape): 1 where the query sees some key, else 0. Broadcast once and
	// shared by every layer.
	allowed, visible *Node
	// kv returns the keys [B, kv_heads, S, head_dim] and values [B, kv_heads,
	// head_dim, S] that layer i attends to, given its chunk's own (C in place
	// of S). Nil when the chunk attends only to itself.
	kv func(i int, k, v *Node) (keys, values *Node)
}

// layerContext builds the rotary tables and the attention mask of a chunk
// whose tokens sit at the rotary positions [B, C] and occupy slots start..
// start+C-1 (start nil means 0) of the keyValid [B, S] slots.
func (d *decoder) layerContext(positions, keyValid, start *Node) layerContext {
	g := positions.Graph()
	batch, length := positions.Shape().Dimensions[0], positions.Shape().Dimensions[1]
	slots := keyValid.Shape().Dimensions[1]
	cos, sin := d.ropeTables(positions)

	// Attention mask [B, 1, C, 1, S]: padding and causality.
	queryPos := Iota(g, shapeOf(dtypes.Int32, length), 0) // [C]
	if start != nil {
		queryPos = Add(queryPos, start)
	}
	keyPos := Iota(g, shapeOf(dtypes.Int32, slots), 0)                    // [S]
	causal := LessOrEqual(ExpandAxes(keyPos, 0), ExpandAxes(queryPos, 1)) // [C, S]
	allowed := LogicalAnd(ExpandAxes(causal, 0), ExpandAxes(keyValid, 1))
	allowed = Reshape(allowed, batch, 1, length, 1, slots)
	// A query with no visible key (a padding position) gets a zero attention
	// output, as PyTorch's scaled_dot_product_attention gives for fully
	// masked rows.
	anyVisible := ReduceLogicalOr(allowed, -1) // [B, 1, C, 1]
	kv, group := d.cfg.NumKeyValueHeads, d.cfg.NumAttentionHeads/d.cfg.NumKeyValueHeads
	return layerContext{batch: batch, length: length, slots: slots, cos: cos, sin: sin, keyPos: keyPos,
		allowed: BroadcastToDims(allowed, batch, kv, length, group, slots),
		visible: BroadcastToDims(ConvertDType(ExpandAxes(anyVisible, -1), dtypes.Float32), batch, kv, length, group, slots)}
}

// layer applies decoder block i to x [B, C, hidden].
func (d *decoder) layer(i int, x *Node, lc layerContext) *Node {
	c := d.cfg
	g := x.Graph()
	batch, length := lc.batch, lc.length
	heads, kvHeads, hd := c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim
	group := heads / kvHeads

	h := d.rmsNorm(x, d.w(wAttnNorm, i))
	var qb, kb, vb *Node
	if d.arch.qkvBias(c) {
		qb, kb, vb = d.cw(wQBias, i), d.cw(wKBias, i), d.cw(wVBias, i)
	}
	q := Reshape(d.projection(h, wQ, i, qb), batch, length, heads, hd)
	k := Reshape(d.projection(h, wK, i, kb), batch, length, kvHeads, hd)
	v := Reshape(d.projection(h, wV, i, vb), batch, length, kvHeads, hd)
	if d.arch.qkNorm {
		q = d.rmsNorm(q, d.w(wQNorm, i))
		k = d.rmsNorm(k, d.w(wKNorm, i))
	}
	q, k = d.rope(q, lc.cos, lc.sin), d.rope(k, lc.cos, lc.sin)

	// Keys [B, kv, C, hd] and values [B, kv, hd, C] are laid out as the
	// attention products read them (batch axes, free axes, contracted axis):
	// the pure-Go backend would otherwise copy the whole cache into that
	// layout at every decode step. The caches keep this layout.
	keys := TransposeAllAxes(k, 0, 2, 1, 3)
	values := TransposeAllAxes(v, 0, 2, 3, 1)
	if lc.kv != nil {
		keys, values = lc.kv(i, keys, values)
	}

	// Grouped-query attention: query head h uses kv head h / group.
	q5 := Reshape(q, batch, length, kvHeads, group, hd)
	scores := dot(q5, []int{4}, []int{0, 2}, keys, []int{3}, []int{0, 1}) // [B, kv, C, G, S]
	scores = MulScalar(ConvertDType(scores, dtypes.Float32), 1/sqrtF(float64(hd)))
	scores = Where(lc.allowed, scores, Scalar(g, dtypes.Float32, -1e30))
	probs := Softmax(scores, -1)
	probs = Mul(probs, lc.visible)
	attn := dot(ConvertDType(probs, d.compute), []int{4}, []int{0, 1}, values, []int{3}, []int{0, 1}) // [B, kv, C, G, hd]
	attn = Reshape(TransposeAllAxes(attn, 0, 2, 1, 3, 4), batch, length, heads*hd)
	x = Add(x, d.projection(attn, wO, i, nil))

	h = d.rmsNorm(x, d.w(wMLPNorm, i))
	gate := d.projection(h, wGate, i, nil)
	up := d.projection(h, wUp, i, nil)
	return Add(x, d.projection(Mul(Mul(gate, Sigmoid(gate)), up), wDown, i, nil))
}

// cacheKV returns layer i's keys [B, kv, S, hd] and values [B, kv, hd, S]
// over the cache's slots, with the chunk's own k [B, kv, C, hd] and v
// [B, kv, hd, C] written in.
func (d *decoder) cacheKV(in chunk, lc layerContext, i int, k, v *Node) (keys, values *Node) {
	g := k.Graph()
	switch {
	case in.cacheK != nil && d.inPlaceCache:
		// Write the chunk at slot start.
		zero := Scalar(g, dtypes.Int32, 0)
		keys = DynamicUpdateSlice(in.cacheK[i], ConvertDType(k, in.cacheK[i].DType()), []*Node{zero, zero, in.start, zero})
		values = DynamicUpdateSlice(in.cacheV[i], ConvertDType(v, in.cacheV[i].DType()), []*Node{zero, zero, zero, in.start})
	case in.cacheK != nil && lc.length > 1:
		// Several tokens without DynamicUpdateSlice: a one-hot product
		// moves chunk token c to slot start+c (exact: each output sums one
		// nonzero term), then a select keeps the other slots.
		dt := in.cacheK[i].DType()
		chunkPos := Iota(g, shapeOf(dtypes.Int32, lc.length), 0)
		place := Equal(ExpandAxes(Add(chunkPos, in.start), 1), ExpandAxes(lc.keyPos, 0)) // [C, S]
		onehot := ConvertDType(place, dt)
		written := ReduceLogicalOr(place, 0) // [S]
		// v [B, kv, hd, C] -> [B, kv, hd, S]
		spreadV := dot(ConvertDType(v, dt), []int{3}, nil, onehot, []int{0}, nil)
		// k [B, kv, C, hd] -> [B, kv, hd, S] -> [B, kv, S, hd]
		spreadK := TransposeAllAxes(dot(ConvertDType(k, dt), []int{2}, nil, onehot, []int{0}, nil), 0, 1, 3, 2)
		selK := BroadcastToDims(Reshape(written, 1, 1, lc.slots, 1), in.cacheK[i].Shape().Dimensions...)
		selV := BroadcastToDims(Reshape(written, 1, 1, 1, lc.slots), in.cacheV[i].Shape().Dimensions...)
		keys = Where(selK, spreadK, in.cacheK[i])
		values = Where(selV, spreadV, in.cacheV[i])
	case in.cacheK != nil:
		// One token, for backends without DynamicUpdateSlice (the pure-Go
		// one): two scatters into the (donated) cache write slot start in
		// place, touching only that slot.
		keys = setSlot(in.cacheK[i], 2, in.start, k)
		values = setSlot(in.cacheV[i], 3, in.start, v)
	default:
		// Prefill: the prompt's keys and values open a fresh cache.
		kv, hd, rest := d.cfg.NumKeyValueHeads, d.cfg.HeadDim, lc.slots-lc.length
		keys = Concatenate([]*Node{k, Zeros(g, shapeOf(d.compute, lc.batch, kv, rest, hd))}, 2)
		values = Concatenate([]*Node{v, Zeros(g, shapeOf(d.compute, lc.batch, kv, hd, rest))}, 3)
	}
	return keys, values
}

// setSlot returns cache with index start of its slot axis replaced by x,
// which has the cache's shape with 1 slot: the slot is first lowered to
// −inf by one scatter, then raised to x by another, which sets it exactly.
// On a donated cache both scatters work in place.
func setSlot(cache *Node, slotAxis int, start, x *Node) *Node {
	g := cache.Graph()
	x = Squeeze(ConvertDType(x, cache.DType()), slotAxis)
	at := Reshape(start, 1)
	lowest := BroadcastToDims(Infinity(g, cache.DType(), -1), x.Shape().Dimensions...)
	window, inserted, toOperand := []int{0, 1, 2}, []int{slotAxis}, []int{slotAxis}
	cleared := BackendScatterMin(cache, at, lowest, 0, window, inserted, toOperand, true, true)
	return BackendScatterMax(cleared, at, x, 0, window, inserted, toOperand, true, true)
}

// projection applies layer's linear layer pattern (a weight name such as
// wQ) to x, with its bias b (nil: none) and its LoRA adapter, if any.
func (d *decoder) projection(x *Node, pattern string, layer int, b *Node) *Node {
	y := d.linear(x, d.cw(pattern, layer), b)
	if d.lora != nil {
		y = d.lora.add(d, y, x, pattern, layer)
	}
	return y
}

// cw returns a layer weight in the compute dtype.
func (d *decoder) cw(pattern string, layer int) *Node {
	return ConvertDType(d.w(pattern, layer), d.compute)
}

// logits projects hidden states [B, C, hidden] to float32 logits [B, C, vocab].
func (d *decoder) logits(hidden *Node) *Node {
	name := wLMHead
	if d.cfg.TieWordEmbeddings {
		name = wEmbed
	}
	head := ConvertDType(d.weight(name), d.compute)
	return ConvertDType(d.project(hidden, head), dtypes.Float32)
}

// project computes x·Wᵀ over the last axis of x, for w [out, in].
func (d *decoder) project(x, w *Node) *Node {
	if d.splitSmallDots {
		return splitDot(x, w)
	}
	return dot(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
}
