package model

import (
	"context"
	"fmt"
	"github.com/ssp-project/ssp/internal/safetensors"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Gradients holds a loss and d(loss)/dθ for every parameter, keyed by
// Hugging Face parameter name (a tied embedding appears once), or for every
// LoRA factor, keyed by PEFT name, when the model has adapters.
type Gradients struct {
	Loss  float32
	Grads map[string][]float32
	// Shapes gives each gradient's dimensions.
	Shapes map[string][]int
}

// LMGradients computes the mean next-token cross-entropy of rectangular ids
// [B][T] (transformers' labels=input_ids loss: every position but the first
// is predicted) and its gradient with respect to the parameters a Trainer
// would train (the adapters alone when the model has them), without
// changing the weights.
func (m *Model) LMGradients(ctx context.Context, ids [][]int32) (*Gradients, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	batch, length, err := rectangular("input_ids", ids)
	if err != nil {
		return nil, err
	}
	if length < 2 {
		return nil, fmt.Errorf("input_ids: need at least 2 tokens per row, got %d", length)
	}
	if err := m.checkTokens("input_ids", ids); err != nil {
		return nil, err
	}
	flat, valid := padRight(ids, batch, length)
	mask := make([]float32, batch*length)
	for b := range batch {
		for t := 1; t < length; t++ {
			mask[b*length+t] = 1
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	trained := m.trainableSpecs()
	exec, err := mlctx.NewExec(m.backend, m.ctx, func(_ *mlctx.Context, ids, valid, mask, invTokens *Node) []*Node {
		g := ids.Graph()
		d := m.decoderFor(g)
		hidden, _, _ := d.forward(chunk{ids: ids, positions: Iota(g, ids.Shape(), 1), keyValid: valid})
		report, surrogate := d.headLoss(hidden, ids, nil, []*Node{mask, invTokens}, lmLoss, m.logprobChunk, m.lora == nil)
		params := make([]*Node, len(trained))
		for i, s := range trained {
			params[i] = m.vars[s.name].ValueGraph(g)
		}
		grads := Gradient(surrogate, params...)
		forgetDots(g)
		return append([]*Node{report[0]}, grads...)
	})
	if err != nil {
		return nil, fmt.Errorf("gradients: %w", err)
	}
	defer exec.Finalize()
	out, err := catch(func() ([]*tensors.Tensor, error) {
		return exec.Exec(tensors.FromFlatDataAndDimensions(flat, batch, length),
			tensors.FromFlatDataAndDimensions(valid, batch, length),
			tensors.FromFlatDataAndDimensions(mask, batch, length),
			tensors.FromScalar(float32(1/float64(batch*(length-1)))))
	})
	if err != nil {
		return nil, fmt.Errorf("gradients: %w", err)
	}
	res := &Gradients{Grads: map[string][]float32{}, Shapes: map[string][]int{}}
	lossT, err := tensorFloat32(out[0])
	if err != nil {
		return nil, err
	}
	res.Loss = lossT[0]
	for i, s := range trained {
		if res.Grads[s.name], err = tensorFloat32(out[1+i]); err != nil {
			return nil, fmt.Errorf("gradient of %s: %w", s.name, err)
		}
		res.Shapes[s.name] = s.shape
	}
	return res, nil
}

// WriteSafetensors writes every gradient under its parameter name, plus the
// float32 tensor "loss" [1], atomically.
func (g *Gradients) WriteSafetensors(path string) error {
	out := map[string]*safetensors.Tensor{}
	var err error
	if out["loss"], err = safetensors.FromFloat32([]int{1}, []float32{g.Loss}, "F32"); err != nil {
		return err
	}
	for name, data := range g.Grads {
		if out[name], err = safetensors.FromFloat32(g.Shapes[name], data, "F32"); err != nil {
			return err
		}
	}
	if err := safetensors.WriteFile(path, out, nil); err != nil {
		return fmt.Errorf("write gradients %s: %w", path, err)
	}
	return nil
}
