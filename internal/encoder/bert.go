package encoder

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ssp-project/ssp/internal/safetensors"
)

// bertConfig is the part of a Hugging Face BERT config.json the encoder
// reads.
type bertConfig struct {
	ModelType             string  `json:"model_type"`
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	IntermediateSize      int     `json:"intermediate_size"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	TypeVocabSize         int     `json:"type_vocab_size"`
	HiddenAct             string  `json:"hidden_act"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	PositionEmbeddingType string  `json:"position_embedding_type"`
}

// bertFamily are the model_type values this package runs: BERT itself,
// which is what all-MiniLM-L6-v2, BGE (English) and E5 (English) report.
var bertFamily = map[string]bool{"bert": true}

// notBERT explains the model types people are most likely to try.
var notBERT = map[string]string{
	"xlm-roberta": "XLM-RoBERTa (multilingual E5/BGE-M3) uses a SentencePiece tokenizer and RoBERTa position ids; it is not supported",
	"roberta":     "RoBERTa uses a byte-level BPE tokenizer and offset position ids; it is not supported",
}

// readBERTConfig reads dir/config.json and refuses models that are not BERT.
func readBERTConfig(dir string) (*bertConfig, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: no config.json: %w", dir, err)
	}
	var c bertConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !bertFamily[c.ModelType] {
		if why, ok := notBERT[c.ModelType]; ok {
			return nil, fmt.Errorf("%s: model_type %q: %s", path, c.ModelType, why)
		}
		return nil, fmt.Errorf("%s: model_type %q is not a BERT-family encoder (supported: bert)", path, c.ModelType)
	}
	if c.HiddenAct != "gelu" {
		return nil, fmt.Errorf("%s: hidden_act %q is not supported (gelu, the erf form)", path, c.HiddenAct)
	}
	if c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute" {
		return nil, fmt.Errorf("%s: position_embedding_type %q is not supported (absolute)", path, c.PositionEmbeddingType)
	}
	if c.HiddenSize <= 0 || c.NumHiddenLayers <= 0 || c.NumAttentionHeads <= 0 || c.IntermediateSize <= 0 ||
		c.VocabSize <= 0 || c.MaxPositionEmbeddings <= 0 || c.HiddenSize%c.NumAttentionHeads != 0 {
		return nil, fmt.Errorf("%s: inconsistent sizes (hidden_size %d, num_attention_heads %d, num_hidden_layers %d, intermediate_size %d, vocab_size %d, max_position_embeddings %d)",
			path, c.HiddenSize, c.NumAttentionHeads, c.NumHiddenLayers, c.IntermediateSize, c.VocabSize, c.MaxPositionEmbeddings)
	}
	if c.LayerNormEps == 0 {
		c.LayerNormEps = 1e-12
	}
	if c.TypeVocabSize == 0 {
		c.TypeVocabSize = 2
	}
	return &c, nil
}

// Checkpoint names of the weights, without the "bert." prefix that
// BertFor* checkpoints add; %d is the layer.
const (
	wWordEmbeddings     = "embeddings.word_embeddings.weight"
	wPositionEmbeddings = "embeddings.position_embeddings.weight"
	wTokenTypes         = "embeddings.token_type_embeddings.weight"
	wEmbeddingNorm      = "embeddings.LayerNorm.weight"
	wEmbeddingNormBias  = "embeddings.LayerNorm.bias"
	wQuery              = "encoder.layer.%d.attention.self.query.weight"
	wQueryBias          = "encoder.layer.%d.attention.self.query.bias"
	wKey                = "encoder.layer.%d.attention.self.key.weight"
	wKeyBias            = "encoder.layer.%d.attention.self.key.bias"
	wValue              = "encoder.layer.%d.attention.self.value.weight"
	wValueBias          = "encoder.layer.%d.attention.self.value.bias"
	wAttnOut            = "encoder.layer.%d.attention.output.dense.weight"
	wAttnOutBias        = "encoder.layer.%d.attention.output.dense.bias"
	wAttnNorm           = "encoder.layer.%d.attention.output.LayerNorm.weight"
	wAttnNormBias       = "encoder.layer.%d.attention.output.LayerNorm.bias"
	wUp                 = "encoder.layer.%d.intermediate.dense.weight"
	wUpBias             = "encoder.layer.%d.intermediate.dense.bias"
	wDown               = "encoder.layer.%d.output.dense.weight"
	wDownBias           = "encoder.layer.%d.output.dense.bias"
	wOutNorm            = "encoder.layer.%d.output.LayerNorm.weight"
	wOutNormBias        = "encoder.layer.%d.output.LayerNorm.bias"
)

// weightShapes lists every weight the encoder needs with its shape.
func (c *bertConfig) weightShapes() map[string][]int {
	d, ff := c.HiddenSize, c.IntermediateSize
	shapes := map[string][]int{
		wWordEmbeddings:     {c.VocabSize, d},
		wPositionEmbeddings: {c.MaxPositionEmbeddings, d},
		wTokenTypes:         {c.TypeVocabSize, d},
		wEmbeddingNorm:      {d},
		wEmbeddingNormBias:  {d},
	}
	perLayer := map[string][]int{
		wQuery: {d, d}, wQueryBias: {d}, wKey: {d, d}, wKeyBias: {d}, wValue: {d, d}, wValueBias: {d},
		wAttnOut: {d, d}, wAttnOutBias: {d}, wAttnNorm: {d}, wAttnNormBias: {d},
		wUp: {ff, d}, wUpBias: {ff}, wDown: {d, ff}, wDownBias: {d}, wOutNorm: {d}, wOutNormBias: {d},
	}
	for i := range c.NumHiddenLayers {
		for pattern, shape := range perLayer {
			shapes[fmt.Sprintf(pattern, i)] = shape
		}
	}
	return shapes
}

// bert is a BERT encoder whose weights live in a GoMLX context.
type bert struct {
	cfg  *bertConfig
	ctx  *mlctx.Context
	vars map[string]*mlctx.Variable
}

// loadBERT reads the safetensors weights of dir, with or without the
// "bert." prefix, checking every name and shape.
func loadBERT(dir string, cfg *bertConfig) (*bert, error) {
	weights, err := safetensors.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	prefix := ""
	if _, ok := weights[wWordEmbeddings]; !ok {
		if _, ok := weights["bert."+wWordEmbeddings]; ok {
			prefix = "bert."
		}
	}
	b := &bert{cfg: cfg, ctx: mlctx.New(), vars: map[string]*mlctx.Variable{}}
	scope := b.ctx.In("bert")
	for name, shape := range cfg.weightShapes() {
		w, ok := weights[prefix+name]
		if !ok {
			return nil, fmt.Errorf("encoder %s: missing weight %s%s", dir, prefix, name)
		}
		if fmt.Sprint(w.Shape) != fmt.Sprint(shape) {
			return nil, fmt.Errorf("encoder %s: weight %s%s has shape %v, config.json implies %v", dir, prefix, name, w.Shape, shape)
		}
		data, err := w.Float32()
		if err != nil {
			return nil, fmt.Errorf("encoder %s: weight %s%s: %w", dir, prefix, name, err)
		}
		b.vars[name] = scope.VariableWithValue(name, tensors.FromFlatDataAndDimensions(data, shape...))
	}
	return b, nil
}

func (b *bert) weight(g *Graph, pattern string, layer ...any) *Node {
	name := pattern
	if len(layer) > 0 {
		name = fmt.Sprintf(pattern, layer...)
	}
	return b.vars[name].ValueGraph(g)
}

// linear is x·Wᵀ + b over the last axis, W in the checkpoint's
// [out, in] layout.
func linear(x, w, bias *Node) *Node {
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	return Add(y, ExpandLeftToRank(bias, y.Rank()))
}

// layerNorm normalises over the last axis with the biased variance, as
// torch.nn.LayerNorm does.
func layerNorm(x, scale, bias *Node, eps float64) *Node {
	mean := ReduceAndKeep(x, ReduceMean, -1)
	centred := Sub(x, mean)
	variance := ReduceAndKeep(Square(centred), ReduceMean, -1)
	normed := Mul(centred, Rsqrt(AddScalar(variance, eps)))
	return Add(Mul(normed, ExpandLeftToRank(scale, x.Rank())), ExpandLeftToRank(bias, x.Rank()))
}

// gelu is the exact (erf) GELU that BERT's "gelu" names.
func gelu(x *Node) *Node {
	return Mul(MulScalar(x, 0.5), OnePlus(Erf(MulScalar(x, 1/math.Sqrt2))))
}

// hiddenStates runs the encoder over ids [B, T] with mask [B, T] (1 for
// tokens, 0 for padding) and returns the last hidden states [B, T, D].
// Every token has token type 0, as for a single sentence.
func (b *bert) hiddenStates(ids, mask *Node) *Node {
	c := b.cfg
	g := ids.Graph()
	batch, length := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	heads, d := c.NumAttentionHeads, c.HiddenSize
	headDim := d / heads

	words := Gather(b.weight(g, wWordEmbeddings), ExpandAxes(ids, -1))         // [B, T, D]
	positions := Slice(b.weight(g, wPositionEmbeddings), AxisRange(0, length)) // [T, D]
	tokenType := Slice(b.weight(g, wTokenTypes), AxisRange(0, 1))              // [1, D]
	x := Add(Add(words, ExpandAxes(positions, 0)), ExpandAxes(tokenType, 0))   // [B, T, D]
	x = layerNorm(x, b.weight(g, wEmbeddingNorm), b.weight(g, wEmbeddingNormBias), c.LayerNormEps)

	// Padding keys get a large negative score, so they take no attention.
	keyVisible := Reshape(GreaterThan(mask, ScalarZero(g, dtypes.Float32)), batch, 1, 1, length)
	keyVisible = BroadcastToDims(keyVisible, batch, heads, length, length)
	hidden := Scalar(g, dtypes.Float32, -1e30)
	scale := 1 / math.Sqrt(float64(headDim))

	for i := range c.NumHiddenLayers {
		q := Reshape(linear(x, b.weight(g, wQuery, i), b.weight(g, wQueryBias, i)), batch, length, heads, headDim)
		k := Reshape(linear(x, b.weight(g, wKey, i), b.weight(g, wKeyBias, i)), batch, length, heads, headDim)
		v := Reshape(linear(x, b.weight(g, wValue, i), b.weight(g, wValueBias, i)), batch, length, heads, headDim)
		scores := MulScalar(DotGeneral(q, []int{3}, []int{0, 2}, k, []int{3}, []int{0, 2}), scale) // [B, H, Tq, Tk]
		scores = Where(keyVisible, scores, hidden)
		probs := Softmax(scores, -1)
		attn := DotGeneral(probs, []int{3}, []int{0, 1}, v, []int{1}, []int{0, 2}) // [B, H, Tq, hd]
		attn = Reshape(TransposeAllAxes(attn, 0, 2, 1, 3), batch, length, d)
		attn = linear(attn, b.weight(g, wAttnOut, i), b.weight(g, wAttnOutBias, i))
		x = layerNorm(Add(x, attn), b.weight(g, wAttnNorm, i), b.weight(g, wAttnNormBias, i), c.LayerNormEps)

		up := gelu(linear(x, b.weight(g, wUp, i), b.weight(g, wUpBias, i)))
		down := linear(up, b.weight(g, wDown, i), b.weight(g, wDownBias, i))
		x = layerNorm(Add(x, down), b.weight(g, wOutNorm, i), b.weight(g, wOutNormBias, i), c.LayerNormEps)
	}
	return x
}

// pool turns hidden states [B, T, D] into sentence vectors [B, D] the way
// sentence-transformers' Pooling and Normalize modules do.
func pool(hidden, mask *Node, pooling string, normalize bool) *Node {
	var out *Node
	switch pooling {
	case PoolingCLS:
		out = Squeeze(Slice(hidden, AxisRange(), AxisRange(0, 1)), 1)
	default: // PoolingMean: the mean over real tokens
		m := ExpandAxes(mask, -1)
		sum := ReduceSum(Mul(hidden, m), 1)
		count := MaxScalar(ReduceSum(m, 1), 1e-9)
		out = Div(sum, count)
	}
	if normalize {
		norm := Sqrt(ReduceAndKeep(Square(out), ReduceSum, -1))
		out = Div(out, MaxScalar(norm, 1e-12))
	}
	return out
}

// programs compiles the encoder graph once per (rows, length) shape and
// reuses the compiled program for every batch of that shape.
type programs struct {
	backend backends.Backend
	ctx     *mlctx.Context
	graphFn func(*mlctx.Context, *Node, *Node) *Node
	exec    *mlctx.Exec
	shapes  map[[2]int]bool
}

// maxPrograms bounds the compiled shapes. The bucketing of encode keeps
// their number well below it for ordinary batch sizes; beyond it (GoMLX
// refuses new shapes past its cache size) the programs are dropped and
// compiled again as needed.
var maxPrograms = 64 // a variable for the test of the rebuild

func newPrograms(backend backends.Backend, b *bert, pooling string, normalize bool) *programs {
	graphFn := func(_ *mlctx.Context, ids, mask *Node) *Node {
		return pool(b.hiddenStates(ids, mask), mask, pooling, normalize)
	}
	return &programs{backend: backend, ctx: b.ctx, graphFn: graphFn}
}

// run encodes one padded batch: ids and mask are [rows, length] row-major;
// the result is [rows, dim] row-major.
func (p *programs) run(ids []int32, mask []float32, rows, length int) (out []float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("encoder forward [%d, %d]: %v", rows, length, r)
		}
	}()
	shape := [2]int{rows, length}
	if p.exec != nil && !p.shapes[shape] && len(p.shapes) >= maxPrograms {
		p.exec.Finalize()
		p.exec = nil
	}
	if p.exec == nil {
		if p.exec, err = mlctx.NewExecAny(p.backend, p.ctx, p.graphFn); err != nil {
			return nil, fmt.Errorf("encoder program: %w", err)
		}
		p.exec.SetMaxCache(maxPrograms)
		p.shapes = map[[2]int]bool{}
	}
	p.shapes[shape] = true
	res, err := p.exec.Exec(
		tensors.FromFlatDataAndDimensions(ids, rows, length),
		tensors.FromFlatDataAndDimensions(mask, rows, length))
	if err != nil {
		return nil, fmt.Errorf("encoder forward [%d, %d]: %w", rows, length, err)
	}
	defer res[0].FinalizeAll()
	return tensors.CopyFlatData[float32](res[0])
}
