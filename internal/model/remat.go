package model

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Activation checkpointing (rematerialisation). A training step normally runs
// as one program, forward and backward together, which keeps every
// intermediate of every layer alive until its gradient has been taken: the
// attention scores and probabilities ([B, heads, T, T] in float32), the MLP's
// gate, up and product ([B, T, intermediate]) and a dozen [B, T, hidden]
// tensors per layer. With OptimizerConfig.ActivationCheckpointing the step
// runs as a chain of programs instead:
//
//  1. forward: the decoder layers from the token ids, returning only each
//     layer's output (the next layer's input), [B, T, hidden] per layer;
//  2. head: final norm, LM head and loss from the last layer's output; it
//     accumulates the gradients of the final norm and the head and returns
//     d(loss)/d(last layer's output);
//  3. for each layer, last to first: recompute the layer from its saved
//     input and take the vector-Jacobian product with the gradient of its
//     output, as the gradient of sum(output · stop_gradient(upstream))
//     with respect to the layer's input and weights. The weight gradients go
//     into the accumulators; the input gradient is the next program's
//     upstream. Layer 0 recomputes its input from the embedding, so the
//     embedding's gradient is accumulated there.
//
// Peak activation memory drops from L layers' intermediates to L layer
// inputs plus one layer's intermediates, for one more forward pass of the
// layers. The operations are those of the one-program step, so the losses
// and gradients agree with it to float32 rounding.
//
// Every program builds its layers with decoder.layer (llama.go), the block
// decoder.forward runs; TestActivationCheckpointing holds the two steps equal.

// plainLayerContext builds the layer context of a right-padded training batch
// whose real tokens are marked by valid [B, T]; positions are 0..T-1.
func (d *decoder) plainLayerContext(valid *Node) layerContext {
	batch, length := valid.Shape().Dimensions[0], valid.Shape().Dimensions[1]
	return d.layerContext(Iota(valid.Graph(), shapeOf(dtypes.Int32, batch, length), 1), valid, nil)
}

// checkpointedPrograms are the programs of a checkpointed step besides the
// head, which depends on the loss.
type checkpointedPrograms struct {
	forward *programs   // ids, valid, dropout seed → output of every layer
	layers  []*programs // layer i: input (ids for layer 0), upstream gradient, valid, dropout seed → input gradient
}

func (t *Trainer) newCheckpointedPrograms() *checkpointedPrograms {
	m := t.m
	p := &checkpointedPrograms{forward: newPrograms(m.backend, m.ctx, t.checkpointForwardGraph)}
	for i := range m.Config.NumHiddenLayers {
		p.layers = append(p.layers, newPrograms(m.backend, m.ctx, t.checkpointLayerGraph(i)))
	}
	return p
}

// trackedDecoder is trainingDecoder(g, seed) that also reports which
// trained parameters the graph read, in their order: the parameters a
// program's gradient is taken for.
func (t *Trainer) trackedDecoder(g *Graph, seed *Node) (d *decoder, used func() []string) {
	d = t.trainingDecoder(g, seed)
	read, seen := d.weight, map[string]bool{}
	d.weight = func(name string) *Node {
		seen[name] = true
		return read(name)
	}
	return d, func() []string {
		var names []string
		for _, s := range t.params {
			if seen[s.name] {
				names = append(names, s.name)
			}
		}
		return names
	}
}

// checkpointForwardGraph: inputs ids, valid [B, T], the dropout seed;
// outputs the output of each layer, [B, T, hidden] in the compute dtype.
func (t *Trainer) checkpointForwardGraph(_ *mlctx.Context, in []*Node) []*Node {
	ids, valid := in[0], in[1]
	defer forgetDots(ids.Graph())
	d := t.trainingDecoder(ids.Graph(), in[2])
	lc := d.plainLayerContext(valid)
	x := d.embed(ids)
	outs := make([]*Node, t.m.Config.NumHiddenLayers)
	for i := range outs {
		x = d.layer(i, x, lc)
		outs[i] = x
	}
	return outs
}

// checkpointHeadGraph: inputs the last layer's output, then the inputs of the
// one-program step (ids, valid, inverse temperatures, dropout seed, then the
// loss's). Outputs the loss's report and d(loss)/d(last layer's output).
func (t *Trainer) checkpointHeadGraph(loss lossFunc) func(*mlctx.Context, []*Node) []*Node {
	return func(_ *mlctx.Context, in []*Node) []*Node {
		last, step := in[0], in[1:]
		ids, invTemp := step[inIDs], step[inInvTemp]
		g := last.Graph()
		d, used := t.trackedDecoder(g, step[inSeed])
		hidden := d.rmsNorm(last, d.weight(wFinalNorm))
		report, surrogate := d.headLoss(hidden, ids, invTemp, step[inLoss:], loss, t.m.logprobChunk, t.trainsHead())
		upstream := t.accumulate(g, surrogate, used(), last)
		return append(report, upstream[0])
	}
}

// checkpointLayerGraph: inputs layer i's input (for layer 0 the ids, whose
// embedding is the input), the gradient of the loss with respect to the
// layer's output, valid and the dropout seed (the recomputed layer draws
// the dropout masks of the forward pass). Accumulates the gradients of the
// layer's trained parameters and returns the gradient with respect to its
// input (nothing for layer 0).
func (t *Trainer) checkpointLayerGraph(i int) func(*mlctx.Context, []*Node) []*Node {
	return func(_ *mlctx.Context, in []*Node) []*Node {
		input, upstream, valid := in[0], in[1], in[2]
		g := input.Graph()
		d, used := t.trackedDecoder(g, in[3])
		x := input
		if i == 0 {
			x = d.embed(input)
		}
		out := d.layer(i, x, d.plainLayerContext(valid))
		// The gradient of Σ out·u with respect to (x, θ) is uᵀ·∂out/∂(x, θ).
		vjp := ReduceAllSum(Mul(out, StopGradient(upstream)))
		if i == 0 {
			t.accumulate(g, vjp, used())
			return nil
		}
		return t.accumulate(g, vjp, used(), input)
	}
}

// runCheckpointed runs one micro-batch of a step as the chain of programs
// above and returns what the one-program step returns. Each saved layer
// output is released once its layer's backward has run.
func (t *Trainer) runCheckpointed(head *programs, key string, args []*tensors.Tensor) (report []*tensors.Tensor, err error) {
	ids, valid, seed := args[inIDs], args[inValid], args[inSeed]
	saved, err := t.checkpointed.forward.run(key, ids, valid, seed)
	if err != nil {
		return nil, fmt.Errorf("checkpointed forward: %w", err)
	}
	defer func() {
		for _, x := range saved {
			if x != nil {
				_ = x.FinalizeAll()
			}
		}
	}()
	headArgs := []any{saved[len(saved)-1]}
	for _, a := range args {
		headArgs = append(headArgs, a)
	}
	out, err := head.run(key, headArgs...)
	if err != nil {
		return nil, fmt.Errorf("checkpointed head: %w", err)
	}
	report, upstream := out[:len(out)-1], out[len(out)-1]
	_ = saved[len(saved)-1].FinalizeAll()
	saved[len(saved)-1] = nil
	for i := len(saved) - 1; i >= 0; i-- {
		input := ids
		if i > 0 {
			input = saved[i-1]
		}
		grads, err := t.checkpointed.layers[i].run(key, input, upstream, valid, seed)
		_ = upstream.FinalizeAll()
		if err != nil {
			return nil, fmt.Errorf("checkpointed backward of layer %d: %w", i, err)
		}
		if i > 0 {
			upstream = grads[0]
			_ = saved[i-1].FinalizeAll()
			saved[i-1] = nil
		}
	}
	return report, nil
}
