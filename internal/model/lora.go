package model

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads like maths
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/safetensors"
)

// Low-rank adapters (LoRA, Hu et al. 2021). A projection y = W·x of a
// targeted module becomes
//
//	y = W·x + (alpha/r)·B·A·dropout(x)
//
// with A [r, in] and B [out, r]; W stays frozen and only A and B are
// trained, so gradients and AdamW moments exist for the adapters alone
// (a few MB where the base needs 16 bytes per parameter). A starts
// Kaiming-uniform as PEFT initialises it and B at zero, so a fresh adapter
// leaves the model unchanged. The frozen base is also the KL reference of a
// LoRA run: Base returns a view of the same weights that leaves the
// adapters out, so no second copy of the model is held.
//
// Adapters are written and read in PEFT's format (adapter_config.json and
// adapter_model.safetensors with PEFT's tensor names), so an adapter
// trained here loads into PeftModel.from_pretrained and the other way
// round; Save writes the merged weights W + (alpha/r)·B·A as a plain
// Hugging Face checkpoint.

// LoRAConfig configures the adapters.
type LoRAConfig struct {
	// Rank r of each adapter; must be positive.
	Rank int
	// Alpha scales the adapters' output by Alpha/Rank.
	Alpha float64
	// Dropout is the probability with which each entry of an adapter's
	// input is zeroed in training steps (the rest scaled by 1/(1-p));
	// scoring and generation never drop.
	Dropout float64
	// Targets are the adapted projections, by their short names (q, k, v,
	// o, gate, up, down) or Hugging Face module names (q_proj, …).
	Targets []string
}

// loraTarget is one projection that adapters can target.
type loraTarget struct {
	short, module, pattern string
}

// loraTargets lists the adaptable projections in the order adapters are
// laid out and target_modules is written.
var loraTargets = []loraTarget{
	{"q", "q_proj", wQ}, {"k", "k_proj", wK}, {"v", "v_proj", wV}, {"o", "o_proj", wO},
	{"gate", "gate_proj", wGate}, {"up", "up_proj", wUp}, {"down", "down_proj", wDown},
}

// LoRATargetNames are the short names of the adaptable projections.
func LoRATargetNames() []string {
	names := make([]string, len(loraTargets))
	for i, t := range loraTargets {
		names[i] = t.short
	}
	return names
}

// targetModules resolves short or module names to module names in
// loraTargets order, without duplicates.
func targetModules(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("no target modules (choose among %s)", strings.Join(LoRATargetNames(), ", "))
	}
	want := map[string]bool{}
	for _, n := range names {
		found := false
		for _, t := range loraTargets {
			if n == t.short || n == t.module {
				want[t.module], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("target module %q is not one of %s (or their Hugging Face names q_proj, …, down_proj)",
				n, strings.Join(LoRATargetNames(), ", "))
		}
	}
	var out []string
	for _, t := range loraTargets {
		if want[t.module] {
			out = append(out, t.module)
		}
	}
	return out, nil
}

// Validate checks the configuration; errors name the field.
func (c LoRAConfig) Validate() error {
	switch {
	case c.Rank < 1:
		return fmt.Errorf("lora rank must be at least 1, got %d", c.Rank)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return fmt.Errorf("lora alpha must be positive, got %g", c.Alpha)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("lora dropout must be in [0, 1), got %g", c.Dropout)
	}
	if _, err := targetModules(c.Targets); err != nil {
		return fmt.Errorf("lora targets: %w", err)
	}
	return nil
}

// adapters are a model's LoRA factors.
type adapters struct {
	cfg     LoRAConfig
	modules []string // Hugging Face module names, loraTargets order
	scale   float64  // alpha / rank
	// specs are the factors in a stable order (per layer and target: A,
	// then B) under PEFT's names; factorsOf maps a base weight's name to
	// the names of its A and B.
	specs     []weightSpec
	factorsOf map[string][2]string
	// baseName is written as base_model_name_or_path.
	baseName string
}

// peftName is PEFT's name for factor ("lora_A" or "lora_B") of the base
// weight name (model.layers.0.self_attn.q_proj.weight): PeftModel wraps the
// transformers model as base_model.model.
func peftName(base, factor string) string {
	return "base_model.model." + strings.TrimSuffix(base, ".weight") + "." + factor + ".weight"
}

func newAdapters(m *Model, cfg LoRAConfig) (*adapters, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	modules, _ := targetModules(cfg.Targets)
	a := &adapters{cfg: cfg, modules: modules, scale: cfg.Alpha / float64(cfg.Rank),
		factorsOf: map[string][2]string{}, baseName: m.sourceDir}
	shapeOf := map[string][]int{}
	for _, s := range m.specs {
		shapeOf[s.name] = s.shape
	}
	for layer := range m.Config.NumHiddenLayers {
		for _, t := range loraTargets {
			if !slices.Contains(modules, t.module) {
				continue
			}
			base := fmt.Sprintf(t.pattern, layer)
			out, in := shapeOf[base][0], shapeOf[base][1]
			names := [2]string{peftName(base, "lora_A"), peftName(base, "lora_B")}
			a.factorsOf[base] = names
			a.specs = append(a.specs, weightSpec{names[0], []int{cfg.Rank, in}}, weightSpec{names[1], []int{out, cfg.Rank}})
		}
	}
	return a, nil
}

// AddLoRA attaches fresh adapters: A drawn Kaiming-uniform from
// U(−1/√in, 1/√in), as PEFT's default initialisation (kaiming_uniform_
// with a = √5) draws it, and B zero, so the model computes what it computed
// before. Replaces adapters the model had.
func (m *Model) AddLoRA(cfg LoRAConfig, seed int64) error {
	if m.baseOf != nil {
		return fmt.Errorf("lora: the base view of a model cannot take adapters")
	}
	a, err := newAdapters(m, cfg)
	if err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x10a))
	values := map[string][]float32{}
	for _, s := range a.specs {
		data := make([]float32, s.shape[0]*s.shape[1])
		if strings.HasSuffix(s.name, "lora_A.weight") {
			bound := 1 / math.Sqrt(float64(s.shape[1]))
			for i := range data {
				data[i] = float32((2*rng.Float64() - 1) * bound)
			}
		}
		values[s.name] = data
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setAdapters(a, values)
	return nil
}

// setAdapters installs adapters with the given factor values (float32,
// whatever the base's dtype: they are what training updates). Called with
// the model lock held.
func (m *Model) setAdapters(a *adapters, values map[string][]float32) {
	m.dropAdapters()
	for _, s := range a.specs {
		t := tensors.FromFlatDataAndDimensions(values[s.name], s.shape...)
		scope := m.ctx.In("lora")
		if v := scope.GetVariable(s.name); v != nil {
			v.MustSetValue(t)
			m.vars[s.name] = v
		} else {
			m.vars[s.name] = scope.VariableWithValue(s.name, t)
		}
	}
	m.lora = a
	m.dropPrograms()
}

// dropAdapters forgets the model's adapters. Called with the lock held.
func (m *Model) dropAdapters() {
	if m.lora == nil {
		return
	}
	for _, s := range m.lora.specs {
		delete(m.vars, s.name)
	}
	m.lora = nil
	m.dropPrograms()
}

// dropPrograms discards compiled programs, whose graphs were built with or
// without adapters.
func (m *Model) dropPrograms() {
	for _, p := range []*programs{m.logitsRun, m.tokenRun, m.prefillRun, m.decodeRun, m.extendRun, m.gatherRun, m.mergeRun} {
		p.close()
	}
}

// LoRA returns the adapters' configuration (targets as Hugging Face module
// names), and false when the model has none.
func (m *Model) LoRA() (LoRAConfig, bool) {
	if m.lora == nil {
		return LoRAConfig{}, false
	}
	cfg := m.lora.cfg
	cfg.Targets = slices.Clone(m.lora.modules)
	return cfg, true
}

// NumAdapterParameters is the number of scalars in the adapters (0
// without).
func (m *Model) NumAdapterParameters() int {
	if m.lora == nil {
		return 0
	}
	n := 0
	for _, s := range m.lora.specs {
		n += s.shape[0] * s.shape[1]
	}
	return n
}

// Base returns the model without its adapters: a view that reads the same
// base weights (no copy) through programs of its own that leave the
// adapters out. It is the KL reference of a LoRA run. A model without
// adapters is its own base. The view must not be trained; closing it
// releases only its programs.
func (m *Model) Base() *Model {
	if m.lora == nil {
		return m
	}
	v := &Model{Config: m.Config, arch: m.arch, backend: m.backend, ctx: m.ctx, specs: m.specs, vars: m.vars,
		dtype: m.dtype, compute: m.compute, invFreq: m.invFreq, maxBatch: m.maxBatch, logprobChunk: m.logprobChunk,
		sourceDir: m.sourceDir, baseOf: m, mu: m.mu}
	v.newPrograms()
	return v
}

// trainableSpecs are the parameters a Trainer updates: the adapters when
// there are any, else every weight.
func (m *Model) trainableSpecs() []weightSpec {
	if m.lora != nil {
		return m.lora.specs
	}
	return m.specs
}

// adapterGraph adds the adapters to the projections of one graph.
type adapterGraph struct {
	a *adapters
	// dropoutSeed, set in training graphs when the adapters have dropout,
	// is the scalar uint32 that seeds the dropout masks; nil means no
	// dropout.
	dropoutSeed *Node
}

// add returns y + (alpha/r)·B·A·dropout(x) for the projection pattern of
// layer, or y when it has no adapter.
func (g *adapterGraph) add(d *decoder, y, x *Node, pattern string, layer int) *Node {
	names, ok := g.a.factorsOf[fmt.Sprintf(pattern, layer)]
	if !ok {
		return y
	}
	if g.dropoutSeed != nil {
		x = g.dropout(x, siteOf(pattern, layer))
	}
	a := ConvertDType(d.weight(names[0]), d.compute) // [r, in]
	b := ConvertDType(d.weight(names[1]), d.compute) // [out, r]
	low := d.project(d.project(x, a), b)
	return Add(y, MulScalar(low, g.a.scale))
}

// siteOf numbers the adapted projections of a model, so that each draws
// its own dropout mask.
func siteOf(pattern string, layer int) uint32 {
	for i, t := range loraTargets {
		if t.pattern == pattern {
			return uint32(layer*len(loraTargets) + i)
		}
	}
	return uint32(layer * len(loraTargets))
}

// dropout zeroes each entry of x with probability p and scales the rest by
// 1/(1−p). The mask is a hash of (seed, site, position of the entry), not a
// random stream: a checkpointed step recomputes a layer in its backward pass
// and must draw the same mask as its forward pass did. The hash is
// MurmurHash3's 32-bit finaliser, built from multiplications, xors and
// divisions by powers of two (the pure-Go backend has no bit shifts).
func (g *adapterGraph) dropout(x *Node, site uint32) *Node {
	gr := x.Graph()
	u32 := func(v uint32) *Node { return Scalar(gr, dtypes.Uint32, v) }
	shiftXor := func(h *Node, bits int) *Node { return BitwiseXor(h, Div(h, u32(1<<bits))) }
	n := x.Shape().Size()
	h := Iota(gr, shapeOf(dtypes.Uint32, n), 0)
	h = Add(h, Mul(BitwiseXor(g.dropoutSeed, u32(site*0x9E3779B9)), u32(0x85EBCA6B)))
	h = shiftXor(h, 16)
	h = Mul(h, u32(0x85EBCA6B))
	h = shiftXor(h, 13)
	h = Mul(h, u32(0xC2B2AE35))
	h = shiftXor(h, 16)
	p := g.a.cfg.Dropout
	keep := LessThan(h, u32(uint32(math.Round((1-p)*(1<<32-1)))))
	scale := ConvertDType(MulScalar(ConvertDType(keep, dtypes.Float32), 1/(1-p)), x.DType())
	return Mul(x, Reshape(scale, x.Shape().Dimensions...))
}

// mergeGraph is W + scale·B·A in float32, for W [out, in], A [r, in] and
// B [out, r].
func mergeGraph(_ *mlctx.Context, w, a, b, scale *Node) *Node {
	ab := DotGeneral(ConvertDType(b, dtypes.Float32), []int{1}, nil, ConvertDType(a, dtypes.Float32), []int{0}, nil)
	return Add(ConvertDType(w, dtypes.Float32), Mul(ab, scale))
}

// mergedWeight is the weight name with its adapter merged in (the weight
// itself when it has none), as float32 on the host. Called with the model
// lock held.
func (m *Model) mergedWeight(name string) ([]float32, error) {
	if m.lora == nil {
		return m.weightFloat32(name)
	}
	names, ok := m.lora.factorsOf[name]
	if !ok {
		return m.weightFloat32(name)
	}
	var args []any
	for _, n := range []string{name, names[0], names[1]} {
		t, err := m.vars[n].Value()
		if err != nil {
			return nil, fmt.Errorf("weight %s: %w", n, err)
		}
		args = append(args, t)
	}
	shape := m.vars[name].Shape().Dimensions
	out, err := m.mergeRun.run(shapeKey(append(slices.Clone(shape), m.lora.cfg.Rank)...),
		append(args, tensors.FromScalar(float32(m.lora.scale)))...)
	if err != nil {
		return nil, fmt.Errorf("merge adapter into %s: %w", name, err)
	}
	return tensorFloat32(out[0])
}

// Files of a PEFT adapter directory.
const (
	adapterConfigFile  = "adapter_config.json"
	adapterWeightsFile = "adapter_model.safetensors"
)

// peftConfig is the part of adapter_config.json that a plain LoRA adapter
// sets. Pointer fields tell absent from zero.
type peftConfig struct {
	PeftType      string          `json:"peft_type"`
	TaskType      *string         `json:"task_type"`
	BaseModel     *string         `json:"base_model_name_or_path"`
	R             int             `json:"r"`
	LoRAAlpha     *float64        `json:"lora_alpha"`
	LoRADropout   float64         `json:"lora_dropout"`
	TargetModules json.RawMessage `json:"target_modules"`
	Bias          *string         `json:"bias"`
}

// unsupportedPeftKeys are adapter_config.json keys that change what an
// adapter computes in ways ssp does not implement; each must be absent,
// null, false or empty. Other keys (PEFT's bookkeeping, such as
// peft_version or inference_mode) are ignored.
var unsupportedPeftKeys = []struct{ key, why string }{
	{"fan_in_fan_out", "Llama and Qwen store [out, in] weights"},
	{"use_rslora", "only the alpha/r scale is implemented"},
	{"use_dora", "only plain LoRA is implemented"},
	{"lora_bias", "adapters without biases only"},
	{"modules_to_save", "adapters only, no fully trained modules"},
	{"layers_to_transform", "every layer is adapted"},
	{"layer_replication", "layers are not replicated"},
	{"rank_pattern", "one rank for every module"},
	{"alpha_pattern", "one alpha for every module"},
	{"exclude_modules", "every layer's targets are adapted"},
	{"trainable_token_indices", "embeddings are not trained"},
	{"target_parameters", "adapters on modules only"},
	{"alora_invocation_tokens", "plain LoRA only"},
	{"use_qalora", "plain LoRA only"},
}

// unset reports whether a raw JSON value is absent, null, false or empty.
func unset(raw json.RawMessage) bool {
	switch strings.TrimSpace(string(raw)) {
	case "", "null", "false", "{}", "[]":
		return true
	}
	return false
}

// readAdapterConfig reads and checks dir/adapter_config.json; errors name
// the file and the key.
func readAdapterConfig(dir string) (LoRAConfig, string, error) {
	path := filepath.Join(dir, adapterConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return LoRAConfig{}, "", fmt.Errorf("read adapter: %w", err)
	}
	var pc peftConfig
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &pc); err != nil {
		return LoRAConfig{}, "", fmt.Errorf("%s: %w", path, err)
	}
	if err := json.Unmarshal(data, &all); err != nil {
		return LoRAConfig{}, "", fmt.Errorf("%s: %w", path, err)
	}
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", path, key, fmt.Sprintf(format, args...))
	}
	switch {
	case pc.PeftType != "LORA":
		return LoRAConfig{}, "", bad("peft_type", "%q is not supported (only LORA)", pc.PeftType)
	case pc.TaskType != nil && *pc.TaskType != "CAUSAL_LM":
		return LoRAConfig{}, "", bad("task_type", "%q is not supported (only CAUSAL_LM)", *pc.TaskType)
	case pc.R < 1:
		return LoRAConfig{}, "", bad("r", "must be at least 1, got %d", pc.R)
	case pc.LoRAAlpha == nil:
		return LoRAConfig{}, "", bad("lora_alpha", "is missing")
	case pc.Bias != nil && *pc.Bias != "none":
		return LoRAConfig{}, "", bad("bias", "%q is not supported (only \"none\": no trained biases)", *pc.Bias)
	}
	for _, u := range unsupportedPeftKeys {
		if v, ok := all[u.key]; ok && !unset(v) {
			return LoRAConfig{}, "", bad(u.key, "%s is not supported (%s)", strings.TrimSpace(string(v)), u.why)
		}
	}
	var targets []string
	if err := json.Unmarshal(pc.TargetModules, &targets); err != nil {
		return LoRAConfig{}, "", bad("target_modules", "want a list of module names, got %s", strings.TrimSpace(string(pc.TargetModules)))
	}
	cfg := LoRAConfig{Rank: pc.R, Alpha: *pc.LoRAAlpha, Dropout: pc.LoRADropout, Targets: targets}
	if _, err := targetModules(targets); err != nil {
		return LoRAConfig{}, "", bad("target_modules", "%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return LoRAConfig{}, "", fmt.Errorf("%s: %w", path, err)
	}
	base := ""
	if pc.BaseModel != nil {
		base = *pc.BaseModel
	}
	return cfg, base, nil
}

// ReadAdapterConfig reads the LoRA configuration of a PEFT adapter
// directory (its adapter_config.json) without its weights.
func ReadAdapterConfig(dir string) (LoRAConfig, error) {
	cfg, _, err := readAdapterConfig(dir)
	return cfg, err
}

// LoadAdapter reads a PEFT LoRA adapter directory (adapter_config.json,
// adapter_model.safetensors) onto the model, replacing adapters it had.
// Every tensor of the file must be one the configuration implies, with the
// shape it implies; errors name the file and the tensor.
func (m *Model) LoadAdapter(dir string) error {
	if m.baseOf != nil {
		return fmt.Errorf("lora: the base view of a model cannot take adapters")
	}
	cfg, baseName, err := readAdapterConfig(dir)
	if err != nil {
		return err
	}
	a, err := newAdapters(m, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, adapterConfigFile), err)
	}
	if baseName != "" {
		a.baseName = baseName
	}
	path := filepath.Join(dir, adapterWeightsFile)
	saved, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read adapter: %w", err)
	}
	values := map[string][]float32{}
	for _, s := range a.specs {
		t, ok := saved[s.name]
		if !ok {
			return fmt.Errorf("%s: tensor %s is missing (adapter_config.json targets %s with r %d)",
				path, s.name, strings.Join(a.modules, ", "), cfg.Rank)
		}
		if !slices.Equal(t.Shape, s.shape) {
			return fmt.Errorf("%s: tensor %s has shape %v; r %d and the base model imply %v", path, s.name, t.Shape, cfg.Rank, s.shape)
		}
		if values[s.name], err = t.Float32(); err != nil {
			return fmt.Errorf("%s: tensor %s: %w", path, s.name, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(saved)) {
		if _, ok := values[name]; !ok {
			return fmt.Errorf("%s: tensor %s is not an adapter of the targets %s of this base model",
				path, name, strings.Join(a.modules, ", "))
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setAdapters(a, values)
	return nil
}

// SaveAdapter writes the adapters as a PEFT adapter directory:
// adapter_config.json and adapter_model.safetensors (float32, PEFT's
// tensor names), through outdir like every output directory.
func (m *Model) SaveAdapter(dir string) error {
	return m.SaveAdapterTo(dir, outdir.Options{})
}

// SaveAdapterTo is SaveAdapter with the replacement rules of o.
func (m *Model) SaveAdapterTo(dir string, o outdir.Options) error {
	if m.lora == nil {
		return fmt.Errorf("save adapter %s: the model has no adapters", dir)
	}
	dir = filepath.Clean(dir)
	return outdir.Write(dir, outdir.Adapter, o, func(tmp string) error {
		if err := m.saveAdapterInto(tmp); err != nil {
			return fmt.Errorf("save adapter %s: %w", dir, err)
		}
		return nil
	})
}

func (m *Model) saveAdapterInto(dir string) error {
	m.mu.Lock()
	a := m.lora
	weights := map[string]*safetensors.Tensor{}
	for _, s := range a.specs {
		data, err := m.weightFloat32(s.name)
		if err == nil {
			weights[s.name], err = safetensors.FromFloat32(s.shape, data, "F32")
		}
		if err != nil {
			m.mu.Unlock()
			return err
		}
	}
	m.mu.Unlock()
	if err := safetensors.WriteFile(filepath.Join(dir, adapterWeightsFile), weights, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	config := map[string]any{
		"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": a.baseName,
		"r": a.cfg.Rank, "lora_alpha": a.cfg.Alpha, "lora_dropout": a.cfg.Dropout, "target_modules": a.modules,
		"bias": "none", "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
		"use_rslora": false, "use_dora": false, "modules_to_save": nil, "layers_to_transform": nil,
		"rank_pattern": map[string]any{}, "alpha_pattern": map[string]any{},
	}
	data, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, adapterConfigFile), append(data, '\n'), 0o644)
}

// IsAdapterDir reports whether dir holds a PEFT adapter (adapter_config.json).
func IsAdapterDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, adapterConfigFile))
	return err == nil
}
