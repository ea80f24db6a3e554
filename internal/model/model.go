// Package model is the policy language model: Hugging Face decoder-only
// checkpoints (Llama, Qwen2, Qwen3) loaded into GoMLX, a batched generation
// engine with a KV cache, per-token log-probabilities, and the PPO / language
// modelling training steps with AdamW.
//
// Weights live in a GoMLX context as variables named by their Hugging Face
// names, so checkpoints round-trip without a name map. Computation runs on
// any GoMLX backend: the pure-Go "go" backend on CPU, XLA ("xla:cuda") on
// GPUs.
package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/default" // registers "go" and "xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	_ "github.com/ssp-project/ssp/internal/fastdot" // vectorised float32 products for the "go" backend
)

// LoadOptions select where and in which precision the model runs.
type LoadOptions struct {
	// Backend is a GoMLX backend configuration: "go", "xla:cpu", "xla:cuda".
	// Empty means $GOMLX_BACKEND, or "go" when that is unset.
	Backend string
	// DType is the dtype the weights are stored in on the device: "float32"
	// (default) or "bfloat16". Training keeps float32 master weights.
	DType string
	// ComputeDType is the dtype of matmuls and activations; empty means
	// DType. "bfloat16" with DType "float32" is mixed precision: float32
	// master weights, bfloat16 compute. Norms, softmax, rotary tables and
	// losses are always float32.
	ComputeDType string
	// MaxBatch bounds how many sequences one generation or scoring pass
	// holds; larger requests are split. 0 means 64.
	MaxBatch int
	// LogProbChunkTokens is how many positions' logits scoring
	// (TokenLogProbs) and training steps compute at once: their peak memory
	// holds a few [batch, chunk, vocab] float32 tensors instead of
	// [batch, length, vocab] ones (see logprobs.go). 0 means 512; negative
	// means the whole sequence at once.
	LogProbChunkTokens int
}

// Model is a loaded causal language model.
type Model struct {
	// Config is the model's config.json.
	Config Config

	arch     architecture
	backend  backends.Backend
	ctx      *mlctx.Context
	specs    []weightSpec
	vars     map[string]*mlctx.Variable
	dtype    dtypes.DType // weight storage
	compute  dtypes.DType
	invFreq  []float32
	maxBatch int
	// logprobChunk is LoadOptions.LogProbChunkTokens resolved: positions per
	// chunk of the LM head when scoring and training, <= 0 for all at once.
	logprobChunk int
	// sourceDir is where the checkpoint came from; Save copies its
	// tokenizer and generation files.
	sourceDir string

	// lora holds the low-rank adapters on the projections (lora.go); nil
	// without adapters.
	lora *adapters
	// baseOf is the model whose weights this one reads, for the view Base
	// returns; nil for a model that owns its weights.
	baseOf *Model

	// mu serialises weight updates against graph executions; a Base view
	// shares its model's.
	mu         *sync.Mutex
	logitsRun  *programs
	tokenRun   *programs
	prefillRun *programs
	decodeRun  *programs
	extendRun  *programs // decodeGraph for chunks of several tokens, cached apart from the one-token programs
	gatherRun  *programs
	mergeRun   *programs
}

var (
	backendsMu sync.Mutex
	backendsBy = map[string]backends.Backend{}
)

// Backend returns the GoMLX backend for a configuration string ("" means
// $GOMLX_BACKEND, or "go"). Backends are shared: one per configuration.
func Backend(config string) (backends.Backend, error) {
	if config == "" {
		config = os.Getenv("GOMLX_BACKEND")
	}
	if config == "" {
		config = "go"
	}
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if b, ok := backendsBy[config]; ok {
		return b, nil
	}
	actual := config
	if actual == "go" {
		// Graph nodes run one at a time; each large matmul still uses every
		// core. SimpleGo's parallel node execution can deadlock when several
		// large matmuls wait for the same worker pool.
		actual = "go:ops_sequential"
	}
	b, err := catch(func() (backends.Backend, error) { return backends.NewWithConfig(actual) })
	if err != nil {
		if strings.HasPrefix(config, "xla") {
			return nil, fmt.Errorf("backend %q is not available: %s", config, xlaHint(config, err))
		}
		return nil, fmt.Errorf("backend %q is not available: %w", config, err)
	}
	backendsBy[config] = b
	return b, nil
}

// XLADownloadEnv, set to 1, lets go-xla download its PJRT plugins from the
// internet when an XLA backend is asked for and none is installed. Without
// it nothing is downloaded: a missing plugin is an error that says what to
// install and where.
const XLADownloadEnv = "SSP_XLA_DOWNLOAD"

// xlaHint explains a failed XLA backend: which PJRT plugin it needs,
// where ssp looks for it, and that the pure-Go backend needs none.
func xlaHint(config string, err error) string {
	plugin := "cpu"
	if _, name, ok := strings.Cut(config, ":"); ok && name != "" {
		plugin, _, _ = strings.Cut(name, ",")
	}
	where := "PJRT_PLUGIN_LIBRARY_PATH is not set"
	if dir := os.Getenv("PJRT_PLUGIN_LIBRARY_PATH"); dir != "" {
		where = "PJRT_PLUGIN_LIBRARY_PATH=" + dir + " does not hold it"
	}
	return fmt.Sprintf("it needs XLA's PJRT plugin pjrt_c_api_%s_plugin.so, which is not installed (%s). "+
		"Put the plugin in a folder and set PJRT_PLUGIN_LIBRARY_PATH to that folder (docs/model.md#cpu-and-gpu); "+
		"ssp downloads nothing unless %s=1 lets go-xla fetch it from the internet. "+
		"--backend go, the pure-Go CPU backend, needs nothing installed. (XLA: %v)", plugin, where, XLADownloadEnv, err)
}

// catch turns GoMLX panics (its graph-building error style) into errors.
func catch[T any](fn func() (T, error)) (result T, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	return fn()
}

func parseDType(name, field string) (dtypes.DType, error) {
	switch strings.ToLower(name) {
	case "", "float32", "f32", "fp32":
		return dtypes.Float32, nil
	case "bfloat16", "bf16":
		return dtypes.BFloat16, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("%s %q is not supported (float32 or bfloat16)", field, name)
}

// newModel creates an empty model for cfg on the backend of opts.
func newModel(cfg Config, opts LoadOptions) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	arch, ok := architectures[cfg.ModelType]
	if !ok {
		return nil, fmt.Errorf("config.json: model_type %q is not supported (supported: %v)",
			cfg.ModelType, supportedModelTypes())
	}
	backend, err := Backend(opts.Backend)
	if err != nil {
		return nil, err
	}
	dtype, err := parseDType(opts.DType, "dtype")
	if err != nil {
		return nil, err
	}
	compute := dtype
	if opts.ComputeDType != "" {
		if compute, err = parseDType(opts.ComputeDType, "compute dtype"); err != nil {
			return nil, err
		}
	}
	m := &Model{
		Config:   cfg,
		arch:     arch,
		backend:  backend,
		ctx:      mlctx.New(),
		specs:    arch.weightSpecs(&cfg),
		vars:     map[string]*mlctx.Variable{},
		dtype:    dtype,
		compute:  compute,
		invFreq:  ropeInvFreq(&cfg),
		maxBatch: opts.MaxBatch,
		mu:       &sync.Mutex{},
	}
	if m.maxBatch <= 0 {
		m.maxBatch = 64
	}
	switch {
	case opts.LogProbChunkTokens == 0:
		m.logprobChunk = defaultLogProbChunk
	case opts.LogProbChunkTokens > 0:
		m.logprobChunk = opts.LogProbChunkTokens
	}
	m.newPrograms()
	return m, nil
}

// newPrograms creates the model's (not yet compiled) programs.
func (m *Model) newPrograms() {
	m.logitsRun = newPrograms(m.backend, m.ctx, m.logitsGraph)
	m.tokenRun = newPrograms(m.backend, m.ctx, m.tokenLogProbsGraph)
	m.prefillRun = newPrograms(m.backend, m.ctx, m.prefillGraph)
	m.decodeRun = newPrograms(m.backend, m.ctx, m.decodeGraph)
	m.extendRun = newPrograms(m.backend, m.ctx, m.decodeGraph)
	m.gatherRun = newPrograms(m.backend, m.ctx, m.gatherGraph)
	m.mergeRun = newPrograms(m.backend, m.ctx, mergeGraph)
}

// setWeight stores a float32 host tensor as the variable name, converted to
// the storage dtype.
func (m *Model) setWeight(name string, shape []int, data []float32) {
	var t *tensors.Tensor
	if m.dtype == dtypes.BFloat16 {
		bf := make([]bfloat16.BFloat16, len(data))
		for i, v := range data {
			bf[i] = bfloat16.FromFloat32(v)
		}
		t = tensors.FromFlatDataAndDimensions(bf, shape...)
	} else {
		t = tensors.FromFlatDataAndDimensions(data, shape...)
	}
	if v, ok := m.vars[name]; ok {
		v.MustSetValue(t)
		return
	}
	m.vars[name] = m.ctx.In("model").VariableWithValue(name, t)
}

// weightFloat32 copies a weight to the host as float32.
func (m *Model) weightFloat32(name string) ([]float32, error) {
	v, ok := m.vars[name]
	if !ok {
		return nil, fmt.Errorf("weight %s does not exist", name)
	}
	t, err := v.Value()
	if err != nil {
		return nil, fmt.Errorf("weight %s: %w", name, err)
	}
	return tensorFloat32(t)
}

func tensorFloat32(t *tensors.Tensor) ([]float32, error) {
	switch t.DType() {
	case dtypes.Float32:
		return tensors.CopyFlatData[float32](t)
	case dtypes.BFloat16:
		bf, err := tensors.CopyFlatData[bfloat16.BFloat16](t)
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(bf))
		for i, v := range bf {
			out[i] = v.Float32()
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected dtype %s", t.DType())
}

// Init builds a randomly initialised model: linear and embedding weights
// from a normal distribution with standard deviation initializer_range,
// norm scales 1, biases 0 (transformers' _init_weights).
func Init(cfg Config, seed int64, opts LoadOptions) (*Model, error) {
	m, err := newModel(cfg, opts)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	std := cfg.InitializerRange
	for _, s := range m.specs {
		n := 1
		for _, d := range s.shape {
			n *= d
		}
		data := make([]float32, n)
		switch {
		case strings.HasSuffix(s.name, "norm.weight"):
			for i := range data {
				data[i] = 1
			}
		case strings.HasSuffix(s.name, ".bias"):
		default:
			for i := range data {
				data[i] = float32(rng.NormFloat64() * std)
			}
		}
		m.setWeight(s.name, s.shape, data)
	}
	return m, nil
}

// NumParameters is the number of scalar weights (a tied embedding counts once).
func (m *Model) NumParameters() int {
	n := 0
	for _, s := range m.specs {
		k := 1
		for _, d := range s.shape {
			k *= d
		}
		n += k
	}
	return n
}

// BackendName names the backend the model runs on.
func (m *Model) BackendName() string { return m.backend.Name() }

// decoder returns the graph builder bound to the model's weights.
func (m *Model) decoder() *decoder {
	return &decoder{
		cfg:          &m.Config,
		arch:         m.arch,
		compute:      m.compute,
		invFreq:      m.invFreq,
		inPlaceCache: m.backend.Capabilities().Operations[backends.OpTypeDynamicUpdateSlice],
	}
}

func shapeOf(dtype dtypes.DType, dims ...int) shapes.Shape { return shapes.Make(dtype, dims...) }

// checkTokens reports the first id outside the vocabulary.
func (m *Model) checkTokens(what string, seqs [][]int32) error {
	for i, s := range seqs {
		for j, id := range s {
			if id < 0 || int(id) >= m.Config.VocabSize {
				return fmt.Errorf("%s[%d][%d]: token id %d outside the vocabulary [0, %d)", what, i, j, id, m.Config.VocabSize)
			}
		}
	}
	return nil
}

// bucket rounds n up so that few distinct shapes get compiled: powers of
// two up to 256, then multiples of 128 up to 2048 (at most 25% padding),
// then multiples of 512.
func bucket(n, minimum int) int {
	b := minimum
	for b < n && b < 256 {
		b *= 2
	}
	switch {
	case b >= n:
		return b
	case n <= 2048:
		return (n + 127) / 128 * 128
	}
	return (n + 511) / 512 * 512
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}

// SetSourceDir names the directory whose tokenizer and generation files
// Save copies next to the weights (by default, the directory the model was
// loaded from).
func (m *Model) SetSourceDir(dir string) { m.sourceDir = dir }

// Close releases the compiled programs and the device memory of the
// weights (and of a Trainer's state). The model must not be used after.
// Closing a Base view releases only its programs.
func (m *Model) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range []*programs{m.logitsRun, m.tokenRun, m.prefillRun, m.decodeRun, m.extendRun, m.gatherRun, m.mergeRun} {
		p.close()
	}
	if m.baseOf != nil {
		return
	}
	m.ctx.Finalize()
	m.vars = map[string]*mlctx.Variable{}
}
