package model

import (
	"fmt"
	"slices"
)

// The memory plan: what a training run holds, term by term, computed from
// config.json and the run's settings without loading any weight. Each term
// below says which tensors it counts. The counts are those of the tensors
// this package's graphs keep alive (TestMemoryPlanMatchesMeasured checks the
// totals against the peak Go heap of the pure-Go backend); XLA fuses
// elementwise operations and frees buffers earlier, so on a GPU the
// activation terms are an upper bound.
//
// A run alternates two phases that never overlap: rollouts (generation with
// a KV cache) and training steps (forward and backward passes of one
// micro-batch at a time). Its peak is the state it always holds plus the
// larger of the two phases.

// MemorySettings are the settings the plan depends on.
type MemorySettings struct {
	Config Config
	// LoRA is the adapters' configuration; nil means full fine-tuning.
	LoRA *LoRAConfig
	// FrozenDType is the dtype of weights that are not trained: the base
	// under LoRA and the KL reference ("float32" or "bfloat16"). Trained
	// weights are always float32.
	FrozenDType string
	// ComputeDType is the dtype of matmuls and activations.
	ComputeDType string
	// KLReference is set when the KL penalty scores a frozen reference.
	KLReference bool
	// MicroBatch sequences of SeqLen tokens run forward and backward at
	// once; both are rounded up to the shapes a step pads to.
	MicroBatch, SeqLen int
	// LogProbChunk positions of the LM head at once; <= 0 is the whole
	// sequence.
	LogProbChunk int
	// ActivationCheckpointing keeps only each layer's input (remat.go).
	ActivationCheckpointing bool
	// RolloutSequences sequences of RolloutSlots tokens each keep a KV
	// cache during the largest rollout phase.
	RolloutSequences, RolloutSlots int
}

// Phases of a memory term.
const (
	PhaseState   = "state"   // held for the whole run
	PhaseTrain   = "train"   // during a training step
	PhaseRollout = "rollout" // during generation
)

// MemoryTerm is one line of a plan.
type MemoryTerm struct {
	Name  string
	Phase string
	Bytes float64
	// How is the arithmetic, in words and numbers.
	How string
}

// MemoryPlan is the memory of a training run, term by term.
type MemoryPlan struct {
	Terms []MemoryTerm
	// State, Train and Rollout add up the terms of each phase; Total is
	// State plus the larger of Train and Rollout.
	State, Train, Rollout, Total float64
	// Parameters: of the model (a tied embedding once), and trained (the
	// adapters under LoRA).
	Parameters, Trained int
}

func dtypeBytes(name string) (float64, error) {
	dt, err := parseDType(name, "dtype")
	if err != nil {
		return 0, err
	}
	return float64(dt.Size()), nil
}

// PlanMemory computes the plan.
func PlanMemory(s MemorySettings) (MemoryPlan, error) {
	c := s.Config
	if err := c.Validate(); err != nil {
		return MemoryPlan{}, err
	}
	arch, ok := architectures[c.ModelType]
	if !ok {
		return MemoryPlan{}, fmt.Errorf("config.json: model_type %q is not supported", c.ModelType)
	}
	frozen, err := dtypeBytes(s.FrozenDType)
	if err != nil {
		return MemoryPlan{}, fmt.Errorf("frozen weights: %w", err)
	}
	compute, err := dtypeBytes(s.ComputeDType)
	if err != nil {
		return MemoryPlan{}, fmt.Errorf("compute: %w", err)
	}
	if s.MicroBatch < 1 || s.SeqLen < 2 {
		return MemoryPlan{}, fmt.Errorf("memory plan: micro-batch %d and sequence length %d must be at least 1 and 2", s.MicroBatch, s.SeqLen)
	}
	const f32 = 4.0
	specs := arch.weightSpecs(&c)
	n := 0
	layerParams := 0 // parameters of one decoder layer
	for _, w := range specs {
		size := w.shape[0]
		if len(w.shape) == 2 {
			size *= w.shape[1]
		}
		n += size
		if w.name != wEmbed && w.name != wLMHead && w.name != wFinalNorm {
			layerParams += size
		}
	}
	layerParams /= c.NumHiddenLayers
	headParams := c.VocabSize * c.HiddenSize

	// Adapters: r·(in + out) per adapted projection and layer.
	h, q, kv, inter := c.HiddenSize, c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim, c.IntermediateSize
	adapted := map[string]bool{}
	adapterParams, rank := 0, 0
	if s.LoRA != nil {
		if err := s.LoRA.Validate(); err != nil {
			return MemoryPlan{}, err
		}
		modules, _ := targetModules(s.LoRA.Targets)
		rank = s.LoRA.Rank
		inOut := map[string][2]int{"q_proj": {h, q}, "k_proj": {h, kv}, "v_proj": {h, kv}, "o_proj": {q, h},
			"gate_proj": {h, inter}, "up_proj": {h, inter}, "down_proj": {inter, h}}
		for _, mod := range modules {
			adapted[mod] = true
			adapterParams += rank * (inOut[mod][0] + inOut[mod][1]) * c.NumHiddenLayers
		}
	}
	trained := n
	if s.LoRA != nil {
		trained = adapterParams
	}
	p := MemoryPlan{Parameters: n, Trained: trained}
	add := func(name, phase string, bytes float64, how string, args ...any) {
		p.Terms = append(p.Terms, MemoryTerm{Name: name, Phase: phase, Bytes: bytes, How: fmt.Sprintf(how, args...)})
	}

	// ---- State: held from start to end.
	if s.LoRA == nil {
		add("weights", PhaseState, f32*float64(n),
			"%d parameters × 4 bytes: trained weights are float32, their own master copy", n)
	} else {
		add("weights (frozen base)", PhaseState, frozen*float64(n),
			"%d parameters × %g bytes (%s)", n, frozen, s.FrozenDType)
		add("adapters (master copy)", PhaseState, f32*float64(adapterParams),
			"%d adapter parameters (r %d × (in + out) per adapted projection and layer) × 4 bytes", adapterParams, rank)
	}
	switch {
	case !s.KLReference:
		add("KL reference", PhaseState, 0, "none: optim.kl_coef is 0")
	case s.LoRA != nil:
		add("KL reference", PhaseState, 0, "none extra: the base with the adapters off is the reference")
	default:
		add("KL reference", PhaseState, frozen*float64(n), "a frozen copy: %d parameters × %g bytes (%s)", n, frozen, s.FrozenDType)
	}
	add("gradient accumulators", PhaseState, f32*float64(trained), "%d trained parameters × 4 bytes (float32)", trained)
	add("AdamW moments", PhaseState, 2*f32*float64(trained), "2 × %d trained parameters × 4 bytes (float32 m and v)", trained)

	// ---- Training step: one micro-batch of B sequences of T tokens,
	// padded as a step pads them.
	B, T := bucket(s.MicroBatch, 1), bucket(s.SeqLen, 16)
	tokens := float64(B * T)
	L := float64(c.NumHiddenLayers)
	heads := float64(c.NumAttentionHeads)
	attentionEntries := float64(B) * heads * float64(T) * float64(T) // per layer

	// Per layer and token, the tensors the backward pass reads, in the
	// compute dtype: for each of the two RMSNorms its input, the normalised
	// values (for the norm weight's gradient) and its output (the input of
	// the projections after it); the rotated queries and the attention
	// output (inputs of the score and output products); keys and values;
	// the MLP's gate, sigmoid(gate), silu, up and their product (inputs of
	// the products after them). Under LoRA a frozen projection's input is
	// not kept unless the projection has an adapter, nor the normalised
	// values (the norm weights are frozen); each adapter keeps its r
	// intermediate values. Qwen3's q/k norms keep their input and output.
	// Kept by every step: the two residual inputs (read by the norms'
	// gradients), the rotated queries, keys and values, and the MLP's gate,
	// sigmoid(gate), silu and up.
	perToken := float64(2*h + q + 2*kv + 4*inter)
	// Inputs of the projections, read by their weights' gradients: the
	// first norm's output (q, k, v), the attention output (o), the second
	// norm's output (gate, up) and the MLP product (down).
	inputOf := []struct {
		modules []string
		size    int
	}{{[]string{"q_proj", "k_proj", "v_proj"}, h}, {[]string{"o_proj"}, q},
		{[]string{"gate_proj", "up_proj"}, h}, {[]string{"down_proj"}, inter}}
	for _, in := range inputOf {
		if s.LoRA == nil || slices.ContainsFunc(in.modules, func(m string) bool { return adapted[m] }) {
			perToken += float64(in.size)
		}
	}
	if s.LoRA == nil {
		perToken += float64(2 * h) // the normalised values, read by the norm weights' gradients
	} else {
		perToken += float64(rank * len(adapted)) // each adapter's x·Aᵀ, read by B's gradient
	}
	if arch.qkNorm {
		perToken += float64(2 * (q + kv))
	}
	layerActivations := compute * tokens * perToken
	// Attention per layer: softmax's exponentials and its output (float32,
	// both read by its gradient) and the masked probabilities in the
	// compute dtype (read by the value product's gradient), each
	// [B, heads, T, T].
	layerAttention := (2*f32 + compute) * attentionEntries
	if s.ActivationCheckpointing {
		add("activations: saved layer inputs", PhaseTrain, compute*tokens*float64(h)*L,
			"%d layers × %d tokens × hidden %d × %g bytes", c.NumHiddenLayers, B*T, h, compute)
		add("activations: one layer (recomputed)", PhaseTrain, layerActivations,
			"%d tokens × %.0f values × %g bytes", B*T, perToken, compute)
		add("attention: one layer", PhaseTrain, layerAttention,
			"(2×4 + %g) bytes × B %d × heads %d × T² (T %d)", compute, B, c.NumAttentionHeads, T)
	} else {
		add("activations: layers", PhaseTrain, L*layerActivations,
			"%d layers × %d tokens × %.0f values × %g bytes", c.NumHiddenLayers, B*T, perToken, compute)
		add("attention: layers", PhaseTrain, L*layerAttention,
			"%d layers × (2×4 + %g) bytes × B %d × heads %d × T² (T %d)", c.NumHiddenLayers, compute, B, c.NumAttentionHeads, T)
	}
	// Gradients exist in full before they are added to the accumulators:
	// the one-program step adds them after the whole backward pass; a
	// checkpointed step holds one layer's (and the head's) at a time.
	switch {
	case s.LoRA != nil && s.ActivationCheckpointing:
		add("gradients before accumulation", PhaseTrain, f32*float64(adapterParams)/L, "one layer's adapters × 4 bytes")
	case s.LoRA != nil:
		add("gradients before accumulation", PhaseTrain, f32*float64(adapterParams), "every adapter × 4 bytes")
	case s.ActivationCheckpointing:
		add("gradients before accumulation", PhaseTrain, f32*float64(layerParams+headParams),
			"one layer's %d and the head's %d parameters × 4 bytes", layerParams, headParams)
	default:
		add("gradients before accumulation", PhaseTrain, f32*float64(n), "%d parameters × 4 bytes", n)
	}
	// The backward pass of one layer: the gradients of the attention
	// scores, probabilities and exponentials (float32, [B, heads, T, T])
	// and of the MLP's two widest tensors.
	add("backward temporaries", PhaseTrain, 3*f32*attentionEntries+2*f32*tokens*float64(inter),
		"3 × 4 bytes × B %d × heads %d × T² + 2 × 4 bytes × %d tokens × intermediate %d", B, c.NumAttentionHeads, B*T, inter)
	// The LM head runs chunk positions at a time (logprobs.go): the logits,
	// their exponentials, the probabilities, the one-hot targets, their
	// difference and the logits' gradient, [B, chunk, vocab] float32 each,
	// plus the head weight's gradient for the chunk when it is trained.
	chunk := T
	if s.LogProbChunk > 0 && s.LogProbChunk < T {
		chunk = s.LogProbChunk
	}
	headTensors := 7.0
	if s.LoRA != nil {
		headTensors = 6 // no gradient of the head weight
	}
	add("LM head chunk", PhaseTrain, headTensors*f32*float64(B*chunk*c.VocabSize),
		"%g × 4 bytes × B %d × chunk %d × vocab %d", headTensors, B, chunk, c.VocabSize)
	if compute != f32 && (s.LoRA == nil || frozen != compute) {
		// Weights stored in float32 are read by a bfloat16 step as
		// converted copies, which the backward pass reads again.
		copies := float64(n)
		if s.ActivationCheckpointing {
			copies = float64(layerParams + headParams)
		}
		add("compute-dtype copies of the weights", PhaseTrain, compute*copies, "%.0f parameters × %g bytes", copies, compute)
	}

	// ---- Rollouts: every sequence of the largest phase keeps its keys
	// and values in the compute dtype, per layer K and V of kv_heads ×
	// head_dim per slot.
	add("KV cache", PhaseRollout,
		2*L*float64(c.NumKeyValueHeads*c.HeadDim)*compute*float64(s.RolloutSequences)*float64(bucket(s.RolloutSlots, 16)),
		"2 × %d layers × %d × %g bytes per token × %d sequences × %d slots",
		c.NumHiddenLayers, c.NumKeyValueHeads*c.HeadDim, compute, s.RolloutSequences, bucket(s.RolloutSlots, 16))

	var head, saved float64
	for _, t := range p.Terms {
		switch t.Phase {
		case PhaseState:
			p.State += t.Bytes
		case PhaseTrain:
			p.Train += t.Bytes
		case PhaseRollout:
			p.Rollout += t.Bytes
		}
		switch t.Name {
		case "LM head chunk":
			head = t.Bytes
		case "activations: saved layer inputs":
			saved = t.Bytes
		}
	}
	if s.ActivationCheckpointing {
		// The head and each layer's backward run as separate programs
		// (remat.go); only the saved layer inputs live through both.
		p.Train = max(p.Train-head, saved+head)
	}
	p.Total = p.State + max(p.Train, p.Rollout)
	return p, nil
}

// Largest returns the terms in decreasing size.
func (p MemoryPlan) Largest() []MemoryTerm {
	out := slices.Clone(p.Terms)
	slices.SortStableFunc(out, func(a, b MemoryTerm) int {
		switch {
		case a.Bytes > b.Bytes:
			return -1
		case a.Bytes < b.Bytes:
			return 1
		}
		return 0
	})
	return out
}
