package model

import (
	"context"
	"fmt"
	"github.com/ssp-project/ssp/internal/safetensors"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Logits is a dense [Batch, Length, Vocab] float32 array.
type Logits struct {
	Batch, Length, Vocab int
	Data                 []float32
}

// At returns the logits of row b at position t.
func (l *Logits) At(b, t int) []float32 {
	off := (b*l.Length + t) * l.Vocab
	return l.Data[off : off+l.Vocab]
}

// decoderFor binds the decoder to the variables of graph g.
func (m *Model) decoderFor(g *Graph) *decoder {
	d := m.decoder()
	d.weight = func(name string) *Node {
		v, ok := m.vars[name]
		if !ok {
			panic(fmt.Errorf("model has no weight %s", name))
		}
		return v.ValueGraph(g)
	}
	if m.lora != nil {
		d.lora = &adapterGraph{a: m.lora}
	}
	return d
}

// Logits runs the model over rectangular ids [B][T] the way a plain
// transformers forward does: positions 0..T-1 on every row, attention
// restricted to tokens whose attentionMask is 1 (nil means all ones).
func (m *Model) Logits(ctx context.Context, ids [][]int32, attentionMask [][]int32) (*Logits, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	batch, length, err := rectangular("input_ids", ids)
	if err != nil {
		return nil, err
	}
	if err := m.checkTokens("input_ids", ids); err != nil {
		return nil, err
	}
	if attentionMask != nil {
		if b, t, err := rectangular("attention_mask", attentionMask); err != nil {
			return nil, err
		} else if b != batch || t != length {
			return nil, fmt.Errorf("attention_mask is [%d,%d], input_ids is [%d,%d]", b, t, batch, length)
		}
	}
	flatIDs := make([]int32, 0, batch*length)
	positions := make([]int32, 0, batch*length)
	valid := make([]bool, 0, batch*length)
	for b := range batch {
		flatIDs = append(flatIDs, ids[b]...)
		for t := range length {
			positions = append(positions, int32(t))
			valid = append(valid, attentionMask == nil || attentionMask[b][t] != 0)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out, err := m.logitsRun.run(shapeKey(batch, length),
		tensors.FromFlatDataAndDimensions(flatIDs, batch, length),
		tensors.FromFlatDataAndDimensions(positions, batch, length),
		tensors.FromFlatDataAndDimensions(valid, batch, length))
	if err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	data, err := tensors.CopyFlatData[float32](out[0])
	if err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	return &Logits{Batch: batch, Length: length, Vocab: m.Config.VocabSize, Data: data}, nil
}

func (m *Model) logitsGraph(_ *mlctx.Context, ids, positions, valid *Node) *Node {
	defer forgetDots(ids.Graph())
	d := m.decoderFor(ids.Graph())
	hidden, _, _ := d.forward(chunk{ids: ids, positions: positions, keyValid: valid})
	return d.logits(hidden)
}

func rectangular(name string, rows [][]int32) (batch, length int, err error) {
	if len(rows) == 0 || len(rows[0]) == 0 {
		return 0, 0, fmt.Errorf("%s is empty", name)
	}
	for i, r := range rows {
		if len(r) != len(rows[0]) {
			return 0, 0, fmt.Errorf("%s row %d has length %d, row 0 has %d", name, i, len(r), len(rows[0]))
		}
	}
	return len(rows), len(rows[0]), nil
}

// logSumExp over the last axis, keeping it.
func logSumExp(x *Node) *Node {
	maxX := StopGradient(ReduceAndKeep(x, ReduceMax, -1))
	return Add(Log(ReduceAndKeep(Exp(Sub(x, maxX)), ReduceSum, -1)), maxX)
}

// padRight lays sequences out as [rows, length] ids (pad 0) with a validity
// mask; rows beyond len(seqs) are all padding.
func padRight(seqs [][]int32, rows, length int) (ids []int32, valid []bool) {
	ids = make([]int32, rows*length)
	valid = make([]bool, rows*length)
	for b, s := range seqs {
		copy(ids[b*length:], s)
		for t := range s {
			valid[b*length+t] = true
		}
	}
	return ids, valid
}

// TokenLogProbs scores sequences under the model: entry t of each result is
// log p(token t | tokens < t), entry 0 is 0. Sequence i is scored under
// softmax(logits/temperatures[i]), the distribution it was sampled from
// (nil, or a temperature <= 0 for greedy decoding, means 1), so that the
// result matches Generation.LogProbs. Sequences may have different lengths;
// they are batched and padded to a few bucketed shapes.
func (m *Model) TokenLogProbs(ctx context.Context, sequences [][]int32, temperatures []float32) ([][]float32, error) {
	if err := m.checkTokens("sequences", sequences); err != nil {
		return nil, err
	}
	if temperatures != nil && len(temperatures) != len(sequences) {
		return nil, fmt.Errorf("%d temperatures for %d sequences", len(temperatures), len(sequences))
	}
	for i, s := range sequences {
		if len(s) == 0 {
			return nil, fmt.Errorf("sequences[%d] is empty", i)
		}
	}
	out := make([][]float32, len(sequences))
	for lo := 0; lo < len(sequences); lo += m.maxBatch {
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		part := sequences[lo:min(lo+m.maxBatch, len(sequences))]
		maxLen := 0
		for _, s := range part {
			maxLen = max(maxLen, len(s))
		}
		rows, length := bucket(len(part), 1), bucket(maxLen, 16)
		ids, valid := padRight(part, rows, length)
		invTemp := make([]float32, rows)
		for b := range invTemp {
			invTemp[b] = 1
			if i := lo + b; i < len(temperatures) && temperatures[i] > 0 {
				invTemp[b] = 1 / temperatures[i]
			}
		}
		res, err := m.runTokenLogProbs(ids, valid, invTemp, rows, length)
		if err != nil {
			return nil, err
		}
		for b, s := range part {
			out[lo+b] = append([]float32(nil), res[b*length:b*length+len(s)]...)
		}
	}
	return out, nil
}

func (m *Model) runTokenLogProbs(ids []int32, valid []bool, invTemp []float32, rows, length int) ([]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out, err := m.tokenRun.run(shapeKey(rows, length),
		tensors.FromFlatDataAndDimensions(ids, rows, length),
		tensors.FromFlatDataAndDimensions(valid, rows, length),
		tensors.FromFlatDataAndDimensions(invTemp, rows))
	if err != nil {
		return nil, fmt.Errorf("token log-probs: %w", err)
	}
	return tensors.CopyFlatData[float32](out[0])
}

// WriteSafetensors writes the logits as the float32 tensor "logits"
// [Batch, Length, Vocab], atomically.
func (l *Logits) WriteSafetensors(path string) error {
	t, err := safetensors.FromFloat32([]int{l.Batch, l.Length, l.Vocab}, l.Data, "F32")
	if err != nil {
		return err
	}
	if err := safetensors.WriteFile(path, map[string]*safetensors.Tensor{"logits": t}, nil); err != nil {
		return fmt.Errorf("write logits %s: %w", path, err)
	}
	return nil
}

func (m *Model) tokenLogProbsGraph(_ *mlctx.Context, ids, valid, invTemp *Node) *Node {
	defer forgetDots(ids.Graph())
	d := m.decoderFor(ids.Graph())
	positions := Iota(ids.Graph(), ids.Shape(), 1)
	hidden, _, _ := d.forward(chunk{ids: ids, positions: positions, keyValid: valid})
	logp, _ := d.scoreTokens(hidden, ids, invTemp, m.logprobChunk)
	return logp
}
