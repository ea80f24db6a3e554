package model

import (
	"context"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// OptimizerConfig configures AdamW and its learning-rate schedule.
type OptimizerConfig struct {
	LR          float64
	WeightDecay float64 // decoupled (AdamW) weight decay, applied to every parameter
	Beta1       float64 // 0 means 0.9
	Beta2       float64 // 0 means 0.999
	Eps         float64 // 0 means 1e-8
	// WarmupSteps ramps the learning rate linearly from LR/WarmupSteps to LR.
	WarmupSteps int
	// TotalSteps is the length of the "linear" and "cosine" decays (to 0).
	TotalSteps int
	// Schedule is "constant" (default), "linear" or "cosine".
	Schedule string
	// MaxGradNorm clips the global gradient norm; 0 disables clipping.
	MaxGradNorm float64
	// MicroBatchSize splits a step's sequences into micro-batches whose
	// gradients are accumulated; 0 runs the whole batch at once.
	MicroBatchSize int
	// ActivationCheckpointing keeps only each decoder layer's input alive
	// through the forward pass and recomputes the layer's internals during
	// the backward pass: activation memory of about one layer plus one
	// [B, T, hidden] tensor per layer, for one more forward pass per step.
	// Losses and updates are those of the plain step (see remat.go).
	ActivationCheckpointing bool
}

// Trainer updates a model's weights in place with AdamW: every weight, or
// only the LoRA adapters when the model has them (the base stays frozen and
// has neither gradients nor moments).
type Trainer struct {
	m    *Model
	cfg  OptimizerConfig
	step int // optimizer steps taken
	// params are the parameters trained: the model's weights, or its
	// adapters; lora is the adapters they belong to (nil: none).
	params []weightSpec
	lora   *adapters

	ctx      *mlctx.Context // scope "/opt": moments and gradient accumulators
	gradAcc  map[string]*mlctx.Variable
	moment1  map[string]*mlctx.Variable
	moment2  map[string]*mlctx.Variable
	policy   objective
	lm       objective
	applyRun *programs
	// checkpointed holds the layer programs of checkpointed steps; nil
	// without ActivationCheckpointing.
	checkpointed *checkpointedPrograms
}

// lossFunc turns the next-token log-probs and entropies [B, C] of a batch (or
// of a chunk of its positions) and the step's further inputs (per-token ones
// cut to the same positions) into the loss to minimise and the values a step
// reports (the loss first). The loss and every reported value must be sums
// over tokens, so that the chunks' values add up to the batch's (see
// logprobs.go).
type lossFunc func(logp, entropy *Node, in []*Node) (loss *Node, report []*Node)

// objective is one kind of training step: the one-program step, and the
// head of its checkpointed form.
type objective struct {
	whole *programs
	head  *programs
}

// NewTrainer prepares AdamW state for m: for every weight, or for the LoRA
// adapters alone when m has them (attach them before). Trained parameters
// must be float32 (the master weights): a model without adapters must be
// stored in float32; with adapters, which are always float32, the frozen
// base may be stored in bfloat16. Compute may be bfloat16 either way.
func NewTrainer(m *Model, cfg OptimizerConfig) (*Trainer, error) {
	if m.baseOf != nil {
		return nil, fmt.Errorf("trainer: the base view of a model (Model.Base) is frozen and cannot be trained")
	}
	if m.lora == nil && m.dtype != dtypes.Float32 {
		return nil, fmt.Errorf("trainer: weights are stored as %s; full fine-tuning needs float32 master weights "+
			"(load with DType float32 and ComputeDType bfloat16 for mixed precision, or train LoRA adapters, "+
			"which are float32 over a base of any dtype)", m.dtype)
	}
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	if cfg.Schedule == "" {
		cfg.Schedule = "constant"
	}
	switch {
	case !(cfg.LR > 0):
		return nil, fmt.Errorf("trainer: LR must be positive, got %g", cfg.LR)
	case cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1:
		return nil, fmt.Errorf("trainer: betas must be in [0,1), got %g, %g", cfg.Beta1, cfg.Beta2)
	case cfg.WeightDecay < 0 || cfg.MaxGradNorm < 0 || cfg.WarmupSteps < 0 || cfg.MicroBatchSize < 0:
		return nil, fmt.Errorf("trainer: WeightDecay, MaxGradNorm, WarmupSteps and MicroBatchSize must not be negative")
	}
	switch cfg.Schedule {
	case "constant":
	case "linear", "cosine":
		if cfg.TotalSteps <= 0 {
			return nil, fmt.Errorf("trainer: schedule %q needs TotalSteps", cfg.Schedule)
		}
	default:
		return nil, fmt.Errorf("trainer: schedule %q is not one of constant, linear, cosine", cfg.Schedule)
	}
	t := &Trainer{
		m: m, cfg: cfg, params: m.trainableSpecs(), lora: m.lora,
		ctx:     m.ctx.In("opt"),
		gradAcc: map[string]*mlctx.Variable{},
		moment1: map[string]*mlctx.Variable{},
		moment2: map[string]*mlctx.Variable{},
	}
	for _, o := range []struct {
		obj  *objective
		loss lossFunc
	}{{&t.policy, policyLoss}, {&t.lm, lmLoss}} {
		o.obj.whole = newPrograms(m.backend, m.ctx, t.wholeStepGraph(o.loss))
		if cfg.ActivationCheckpointing {
			o.obj.head = newPrograms(m.backend, m.ctx, t.checkpointHeadGraph(o.loss))
		}
	}
	if cfg.ActivationCheckpointing {
		t.checkpointed = t.newCheckpointedPrograms()
	}
	t.applyRun = newPrograms(m.backend, m.ctx, t.applyGraph)
	for _, s := range t.params {
		for _, slot := range []struct {
			scope string
			vars  map[string]*mlctx.Variable
		}{{"grad", t.gradAcc}, {"m", t.moment1}, {"v", t.moment2}} {
			zeros := tensors.FromShape(shapeOf(dtypes.Float32, s.shape...))
			scope := t.ctx.In(slot.scope)
			// A model has one optimizer state; a new Trainer starts it afresh.
			v := scope.GetVariable(s.name)
			if v != nil {
				if err := v.SetValue(zeros); err != nil {
					return nil, fmt.Errorf("trainer: reset %s: %w", s.name, err)
				}
			} else {
				v = scope.VariableWithValue(s.name, zeros)
			}
			v.SetTrainable(false)
			slot.vars[s.name] = v
		}
	}
	return t, nil
}

// Step is the number of optimizer steps taken so far.
func (t *Trainer) Step() int { return t.step }

// LearningRate is the rate the schedule gives optimizer step number step
// (0-based).
func (t *Trainer) LearningRate(step int) float64 {
	c := t.cfg
	if c.WarmupSteps > 0 && step < c.WarmupSteps {
		return c.LR * float64(step+1) / float64(c.WarmupSteps)
	}
	if c.Schedule == "constant" {
		return c.LR
	}
	span := c.TotalSteps - c.WarmupSteps
	if span <= 0 {
		return c.LR
	}
	progress := math.Min(1, float64(step-c.WarmupSteps)/float64(span))
	if c.Schedule == "linear" {
		return c.LR * (1 - progress)
	}
	return c.LR * 0.5 * (1 + math.Cos(math.Pi*progress))
}

// ppoParts are the per-token pieces of the policy loss, kept apart so the loss
// can be checked on its own.
type ppoParts struct {
	Loss, Policy, KL, Clipped *Node // each [B, T], unmasked
}

// ppoTerms computes the PPO-clip surrogate with asymmetric clipping and
// dual clipping, and the k3 estimate of KL(π‖π_ref) per token, as verl's
// compute_policy_loss and low_var_kl do:
//
//	ratio  = exp(clamp(logp − old, ±20))
//	policy = −min(ratio·A, clip(ratio, 1−clipLow, 1+clipHigh)·A)
//	policy = min(policy, −dualClip·A)           where A < 0 (dualClip > 0)
//	d      = clamp(ref − logp, ±20)
//	k3     = clamp(exp(d) − d − 1, ±klClamp)    (klClamp > 0)
//	loss   = policy + klCoef·k3
//
// Dual clipping bounds the loss of a token with a negative advantage whose
// ratio has grown far above 1 (by −dualClip·A), so one such token cannot
// dominate the update. The ±20 clamps only keep exp finite.
func ppoTerms(logp, old, ref, adv, clipLow, clipHigh, dualClip, klCoef, klClamp *Node) ppoParts {
	limit := func(x *Node, bound float64) *Node {
		return Min(Max(x, MulScalar(OnesLike(x), -bound)), MulScalar(OnesLike(x), bound))
	}
	ratio := Exp(limit(Sub(logp, old), 20))
	unclipped := Neg(Mul(ratio, adv))
	clippedRatio := Min(Max(ratio, OneMinus(clipLow)), OnePlus(clipHigh))
	clipped := Neg(Mul(clippedRatio, adv))
	policy := Max(unclipped, clipped)
	dual := LogicalAnd(IsNegative(adv), BroadcastToShape(IsPositive(dualClip), adv.Shape()))
	policy = Where(dual, Min(policy, Neg(Mul(adv, dualClip))), policy)
	diff := limit(Sub(ref, logp), 20)
	k3 := Sub(Sub(Exp(diff), diff), OnesLike(diff))
	k3 = Where(BroadcastToShape(IsPositive(klClamp), k3.Shape()), Min(Max(k3, Neg(klClamp)), klClamp), k3)
	return ppoParts{
		Loss:    Add(policy, Mul(klCoef, k3)),
		Policy:  policy,
		KL:      k3,
		Clipped: ConvertDType(GreaterThan(clipped, unclipped), dtypes.Float32),
	}
}

// accumulate adds d(loss)/dθ for the named parameters into the gradient
// accumulators and returns d(loss)/dx for each x of wrt.
func (t *Trainer) accumulate(g *Graph, loss *Node, names []string, wrt ...*Node) []*Node {
	nodes := make([]*Node, 0, len(names)+len(wrt))
	for _, name := range names {
		nodes = append(nodes, t.m.vars[name].ValueGraph(g))
	}
	grads := Gradient(loss, append(nodes, wrt...)...)
	forgetDots(g)
	for i, name := range names {
		acc := t.gradAcc[name]
		acc.SetValueGraph(Add(acc.ValueGraph(g), ConvertDType(grads[i], dtypes.Float32)))
	}
	return grads[len(names):]
}

// paramNames lists the trained parameters.
func (t *Trainer) paramNames() []string {
	names := make([]string, len(t.params))
	for i, s := range t.params {
		names[i] = s.name
	}
	return names
}

// trainsHead reports whether the LM head's weight is trained (not with
// adapters, which leave the head frozen).
func (t *Trainer) trainsHead() bool { return t.lora == nil }

// trainingDecoder is decoderFor(g) for a training step: adapters with
// dropout draw their masks from seed (a scalar uint32 input of the step).
func (t *Trainer) trainingDecoder(g *Graph, seed *Node) *decoder {
	d := t.m.decoderFor(g)
	if d.lora != nil && d.lora.a.cfg.Dropout > 0 {
		d.lora.dropoutSeed = seed
	}
	return d
}

// Inputs every training step's programs take before the loss's own.
const (
	inIDs     = iota // [B, T] int32
	inValid          // [B, T] bool
	inInvTemp        // [B] float32 inverse sampling temperatures
	inSeed           // scalar uint32 seeding LoRA dropout
	inLoss           // the loss's inputs start here
)

// wholeStepGraph is a step in one program: inputs as listed above;
// accumulates every trained parameter's gradient and outputs the loss's
// report.
func (t *Trainer) wholeStepGraph(loss lossFunc) func(*mlctx.Context, []*Node) []*Node {
	return func(_ *mlctx.Context, in []*Node) []*Node {
		ids, valid, invTemp := in[inIDs], in[inValid], in[inInvTemp]
		d := t.trainingDecoder(ids.Graph(), in[inSeed])
		positions := Iota(ids.Graph(), ids.Shape(), 1)
		hidden, _, _ := d.forward(chunk{ids: ids, positions: positions, keyValid: valid})
		report, surrogate := d.headLoss(hidden, ids, invTemp, in[inLoss:], loss, t.m.logprobChunk, t.trainsHead())
		t.accumulate(ids.Graph(), surrogate, t.paramNames())
		return report
	}
}

// policyLoss: inputs mask, adv, old, ref [B,T]; scalars invTokens, clipLow,
// clipHigh, dualClip, klCoef, klClamp. Reports masked sums of the loss, policy term, KL,
// entropy and clip indicator (already divided by the whole batch's token
// count).
func policyLoss(logp, entropy *Node, in []*Node) (*Node, []*Node) {
	mask, adv, old, ref := in[0], in[1], in[2], in[3]
	invTokens, clipLow, clipHigh, dualClip, klCoef, klClamp := in[4], in[5], in[6], in[7], in[8], in[9]
	terms := ppoTerms(logp, old, ref, adv, clipLow, clipHigh, dualClip, klCoef, klClamp)
	sum := func(x *Node) *Node { return Mul(ReduceAllSum(Mul(x, mask)), invTokens) }
	loss := sum(terms.Loss)
	return loss, []*Node{loss, StopGradient(sum(terms.Policy)), StopGradient(sum(terms.KL)), sum(entropy),
		StopGradient(sum(terms.Clipped))}
}

// lmLoss: masked next-token cross-entropy; inputs mask [B,T] and the scalar
// invTokens. Reports the loss and the entropy.
func lmLoss(logp, entropy *Node, in []*Node) (*Node, []*Node) {
	mask, invTokens := in[0], in[1]
	sum := func(x *Node) *Node { return Mul(ReduceAllSum(Mul(x, mask)), invTokens) }
	loss := sum(Neg(logp))
	return loss, []*Node{loss, sum(entropy)}
}

// run executes one micro-batch of a step (args: ids, valid, the inverse
// temperatures, the dropout seed, then the loss's inputs), in one program
// or checkpointed.
func (t *Trainer) run(obj *objective, key string, args ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	if t.checkpointed != nil {
		return t.runCheckpointed(obj.head, key, args)
	}
	anyArgs := make([]any, len(args))
	for i, a := range args {
		anyArgs[i] = a
	}
	return obj.whole.run(key, anyArgs...)
}

// applyGraph: inputs lr, bias corrections 1−β1^t and 1−β2^t, max grad norm
// (0 = none). Clips the accumulated gradient by its global norm, takes an
// AdamW step, clears the accumulators and returns the norm before clipping.
func (t *Trainer) applyGraph(_ *mlctx.Context, in []*Node) *Node {
	lr, bc1, bc2, maxNorm := in[0], in[1], in[2], in[3]
	g := lr.Graph()
	c := t.cfg
	var sq *Node
	for _, s := range t.params {
		part := ReduceAllSum(Square(t.gradAcc[s.name].ValueGraph(g)))
		if sq == nil {
			sq = part
		} else {
			sq = Add(sq, part)
		}
	}
	norm := Sqrt(sq)
	scale := Where(IsPositive(maxNorm),
		Min(ScalarOne(g, dtypes.Float32), Div(maxNorm, AddScalar(norm, 1e-6))),
		ScalarOne(g, dtypes.Float32))
	for _, s := range t.params {
		acc, m1, m2, p := t.gradAcc[s.name], t.moment1[s.name], t.moment2[s.name], t.m.vars[s.name]
		grad := Mul(acc.ValueGraph(g), scale)
		mNew := Add(MulScalar(m1.ValueGraph(g), c.Beta1), MulScalar(grad, 1-c.Beta1))
		vNew := Add(MulScalar(m2.ValueGraph(g), c.Beta2), MulScalar(Square(grad), 1-c.Beta2))
		update := Div(Div(mNew, bc1), AddScalar(Sqrt(Div(vNew, bc2)), c.Eps))
		param := p.ValueGraph(g)
		if c.WeightDecay > 0 {
			update = Add(update, MulScalar(param, c.WeightDecay))
		}
		p.SetValueGraph(Sub(param, Mul(lr, update)))
		m1.SetValueGraph(mNew)
		m2.SetValueGraph(vNew)
		acc.SetValueGraph(ZerosLike(grad))
	}
	return norm
}

// microBatch is one padded slice of a step's batch.
type microBatch struct {
	lo           int // index of its first sequence in the batch
	rows, length int
	ids          []int32
	valid        []bool
	perToken     [][]float32 // mask, then any further per-token inputs
}

func (t *Trainer) microBatches(seqs [][]int32, perToken ...[][]float32) []microBatch {
	size := t.cfg.MicroBatchSize
	if size <= 0 {
		size = len(seqs)
	}
	var out []microBatch
	for lo := 0; lo < len(seqs); lo += size {
		part := seqs[lo:min(lo+size, len(seqs))]
		maxLen := 0
		for _, s := range part {
			maxLen = max(maxLen, len(s))
		}
		mb := microBatch{lo: lo, rows: bucket(len(part), 1), length: bucket(maxLen, 16)}
		mb.ids, mb.valid = padRight(part, mb.rows, mb.length)
		for _, field := range perToken {
			flat := make([]float32, mb.rows*mb.length)
			for b, row := range field[lo:min(lo+size, len(seqs))] {
				copy(flat[b*mb.length:], row)
			}
			mb.perToken = append(mb.perToken, flat)
		}
		out = append(out, mb)
	}
	return out
}

// checkPerToken validates that every per-token field matches the sequences.
func checkPerToken(seqs [][]int32, fields map[string][][]float32) (tokens int, err error) {
	if len(seqs) == 0 {
		return 0, fmt.Errorf("batch is empty")
	}
	for name, f := range fields {
		if len(f) != len(seqs) {
			return 0, fmt.Errorf("%s has %d rows, Sequences has %d", name, len(f), len(seqs))
		}
		for i := range f {
			if len(f[i]) != len(seqs[i]) {
				return 0, fmt.Errorf("%s[%d] has length %d, Sequences[%d] has %d", name, i, len(f[i]), i, len(seqs[i]))
			}
		}
	}
	for i, s := range seqs {
		if len(s) < 2 {
			return 0, fmt.Errorf("Sequences[%d] has %d tokens; training needs at least 2", i, len(s))
		}
		for _, mask := range fields["LossMask"][i][1:] {
			if mask != 0 {
				tokens++
			}
		}
	}
	if tokens == 0 {
		return 0, fmt.Errorf("LossMask selects no token (entry 0 of each row is never trained)")
	}
	return tokens, nil
}

// inverseTemperatures are the [rows] inverse sampling temperatures of a
// micro-batch: 1/T per sequence, 1 where T <= 0 (greedy) or temps is nil.
// Padding rows get any value (their mask is 0).
func inverseTemperatures(temps []float32, mb microBatch) []float32 {
	out := make([]float32, mb.rows)
	for b := range out {
		out[b] = 1
		if i := mb.lo + b; i < len(temps) && temps[i] > 0 {
			out[b] = 1 / temps[i]
		}
	}
	return out
}

// cleanMask zeroes entry 0 of each row: the first token has no prediction.
func cleanMask(mask [][]float32) [][]float32 {
	out := make([][]float32, len(mask))
	for i, row := range mask {
		out[i] = append([]float32(nil), row...)
		if len(out[i]) > 0 {
			out[i][0] = 0
		}
	}
	return out
}

// PolicyStep takes one PPO-clip step on batch (token mean of the loss over
// the loss mask of the whole batch, accumulated over micro-batches).
func (t *Trainer) PolicyStep(ctx context.Context, batch PolicyBatch, lossCfg PolicyLossConfig) (StepStats, error) {
	if lossCfg.DualClip != 0 && !(lossCfg.DualClip > 1) {
		return StepStats{}, fmt.Errorf("policy step: DualClip must be 0 (off) or above 1, got %g", lossCfg.DualClip)
	}
	if !(lossCfg.KLClamp >= 0) {
		return StepStats{}, fmt.Errorf("policy step: KLClamp must not be negative, got %g", lossCfg.KLClamp)
	}
	fields := map[string][][]float32{
		"LossMask": batch.LossMask, "Advantages": batch.Advantages, "OldLogProbs": batch.OldLogProbs,
	}
	ref := batch.RefLogProbs
	if lossCfg.KLCoef != 0 {
		if ref == nil {
			return StepStats{}, fmt.Errorf("policy step: KLCoef is %g but RefLogProbs is nil", lossCfg.KLCoef)
		}
		fields["RefLogProbs"] = ref
	}
	tokens, err := checkPerToken(batch.Sequences, fields)
	if err != nil {
		return StepStats{}, fmt.Errorf("policy step: %w", err)
	}
	if batch.Temperatures != nil && len(batch.Temperatures) != len(batch.Sequences) {
		return StepStats{}, fmt.Errorf("policy step: %d temperatures for %d sequences", len(batch.Temperatures), len(batch.Sequences))
	}
	for i, temp := range batch.Temperatures {
		if math.IsNaN(float64(temp)) || math.IsInf(float64(temp), 0) {
			return StepStats{}, fmt.Errorf("policy step: Temperatures[%d] is %g", i, temp)
		}
	}
	if err := t.m.checkTokens("Sequences", batch.Sequences); err != nil {
		return StepStats{}, fmt.Errorf("policy step: %w", err)
	}
	if lossCfg.KLCoef == 0 {
		ref = batch.OldLogProbs // k3 is computed but weighted by 0
	}
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	if err := t.checkAdapters(); err != nil {
		return StepStats{}, fmt.Errorf("policy step: %w", err)
	}

	var stats StepStats
	inv := float32(1 / float64(tokens))
	for i, mb := range t.microBatches(batch.Sequences, cleanMask(batch.LossMask), batch.Advantages, batch.OldLogProbs, ref) {
		if err := ctxErr(ctx); err != nil {
			return StepStats{}, t.discard(err)
		}
		dims := []int{mb.rows, mb.length}
		out, err := t.run(&t.policy, shapeKey(dims...),
			tensors.FromFlatDataAndDimensions(mb.ids, dims...),
			tensors.FromFlatDataAndDimensions(mb.valid, dims...),
			tensors.FromFlatDataAndDimensions(inverseTemperatures(batch.Temperatures, mb), mb.rows),
			tensors.FromScalar(t.dropoutSeed(i)),
			tensors.FromFlatDataAndDimensions(mb.perToken[0], dims...),
			tensors.FromFlatDataAndDimensions(mb.perToken[1], dims...),
			tensors.FromFlatDataAndDimensions(mb.perToken[2], dims...),
			tensors.FromFlatDataAndDimensions(mb.perToken[3], dims...),
			tensors.FromScalar(inv), tensors.FromScalar(lossCfg.ClipLow),
			tensors.FromScalar(lossCfg.ClipHigh), tensors.FromScalar(lossCfg.DualClip),
			tensors.FromScalar(lossCfg.KLCoef), tensors.FromScalar(lossCfg.KLClamp))
		if err != nil {
			return StepStats{}, t.discard(fmt.Errorf("policy step: %w", err))
		}
		vals := scalars(out)
		stats.Loss += vals[0]
		stats.PolicyLoss += vals[1]
		stats.KL += vals[2]
		stats.Entropy += vals[3]
		stats.ClipFraction += vals[4]
	}
	if batch.RefLogProbs == nil {
		stats.KL = 0 // no reference policy: nothing was estimated
	}
	stats.Tokens = tokens
	return t.apply(stats)
}

// LMStep takes one step of masked next-token cross-entropy: lossMask[i][t]
// weights the prediction of sequences[i][t] (entry 0 is ignored); nil
// trains on every token. StepStats.Loss and PolicyLoss both hold the
// cross-entropy.
func (t *Trainer) LMStep(ctx context.Context, sequences [][]int32, lossMask [][]float32) (StepStats, error) {
	if lossMask == nil {
		lossMask = make([][]float32, len(sequences))
		for i, s := range sequences {
			lossMask[i] = make([]float32, len(s))
			for j := range lossMask[i] {
				lossMask[i][j] = 1
			}
		}
	}
	tokens, err := checkPerToken(sequences, map[string][][]float32{"LossMask": lossMask})
	if err != nil {
		return StepStats{}, fmt.Errorf("lm step: %w", err)
	}
	if err := t.m.checkTokens("sequences", sequences); err != nil {
		return StepStats{}, fmt.Errorf("lm step: %w", err)
	}
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	if err := t.checkAdapters(); err != nil {
		return StepStats{}, fmt.Errorf("lm step: %w", err)
	}

	var stats StepStats
	inv := float32(1 / float64(tokens))
	for i, mb := range t.microBatches(sequences, cleanMask(lossMask)) {
		if err := ctxErr(ctx); err != nil {
			return StepStats{}, t.discard(err)
		}
		dims := []int{mb.rows, mb.length}
		out, err := t.run(&t.lm, shapeKey(dims...),
			tensors.FromFlatDataAndDimensions(mb.ids, dims...),
			tensors.FromFlatDataAndDimensions(mb.valid, dims...),
			tensors.FromFlatDataAndDimensions(inverseTemperatures(nil, mb), mb.rows),
			tensors.FromScalar(t.dropoutSeed(i)),
			tensors.FromFlatDataAndDimensions(mb.perToken[0], dims...),
			tensors.FromScalar(inv))
		if err != nil {
			return StepStats{}, t.discard(fmt.Errorf("lm step: %w", err))
		}
		vals := scalars(out)
		stats.Loss += vals[0]
		stats.Entropy += vals[1]
	}
	stats.PolicyLoss = stats.Loss
	stats.Tokens = tokens
	return t.apply(stats)
}

// ZeroGradientStep takes the optimizer step that a batch whose gradient is
// exactly zero takes — a PolicyStep in which every advantage is 0 and the
// KL coefficient is 0 — without running the model: AdamW's moments decay
// and keep moving the weights, weight decay applies, the step count and
// the learning-rate schedule advance. The weights come out bit for bit as
// the full step leaves them. Its stats have Skipped 1, GradNorm 0 and no
// tokens.
func (t *Trainer) ZeroGradientStep(ctx context.Context) (StepStats, error) {
	if err := ctxErr(ctx); err != nil {
		return StepStats{}, err
	}
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	// The accumulators are zero between steps (apply and discard clear them).
	return t.apply(StepStats{Skipped: 1})
}

// dropoutSeed seeds the LoRA dropout masks of micro-batch i of the current
// optimizer step: every micro-batch of every step draws its own masks, and
// a resumed run draws the masks the uninterrupted one would have.
func (t *Trainer) dropoutSeed(i int) uint32 {
	return uint32(t.step)*0x10001 + uint32(i)
}

// checkAdapters refuses to train when the model's adapters were replaced
// (AddLoRA, LoadAdapter) after the Trainer was made for the old ones.
// Called with the model lock held.
func (t *Trainer) checkAdapters() error {
	if t.m.lora != t.lora {
		return fmt.Errorf("the model's adapters changed after the trainer was created; create a new Trainer")
	}
	return nil
}

// discard clears accumulated gradients after a failed step so the next
// step starts clean. Called with the model lock held.
func (t *Trainer) discard(cause error) error {
	for _, acc := range t.gradAcc {
		if err := acc.SetValue(tensors.FromShape(acc.Shape())); err != nil {
			return fmt.Errorf("%w (and clearing gradients failed: %v)", cause, err)
		}
	}
	return cause
}

// apply takes the optimizer step on the accumulated gradients. Called with
// the model lock held.
func (t *Trainer) apply(stats StepStats) (StepStats, error) {
	lr := t.LearningRate(t.step)
	n := float64(t.step + 1)
	bc1 := 1 - math.Pow(t.cfg.Beta1, n)
	bc2 := 1 - math.Pow(t.cfg.Beta2, n)
	out, err := t.applyRun.run("", tensors.FromScalar(float32(lr)), tensors.FromScalar(float32(bc1)),
		tensors.FromScalar(float32(bc2)), tensors.FromScalar(float32(t.cfg.MaxGradNorm)))
	if err != nil {
		return StepStats{}, t.discard(fmt.Errorf("optimizer: %w", err))
	}
	t.step++
	stats.GradNorm = scalars(out)[0]
	stats.LR = lr
	return stats, nil
}

func scalars(ts []*tensors.Tensor) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = float64(tensors.ToScalar[float32](t))
	}
	return out
}
