package gguf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/safetensors"
)

// ImportOptions controls the conversion of a GGUF file to a Hugging Face
// checkpoint directory.
type ImportOptions struct {
	// DType is the dtype of the written weights: F32 (the default), BF16 or F16.
	DType safetensors.DType
	// MaxShardBytes splits the weights into shards above this size (0: one file).
	MaxShardBytes int64
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
	// Force replaces an existing directory at the output path that ssp did
	// not write as a checkpoint (never a file).
	Force bool
}

// architecture describes the Hugging Face side of a GGUF architecture.
type architecture struct {
	hfClass   string
	modelType string
	// permuteQK: llama.cpp's converter reorders the rows of q_proj/k_proj
	// of Llama models from the rotate-half to the interleaved RoPE layout.
	permuteQK bool
	qkvBias   bool // qwen2 always has q/k/v biases
	qkNorm    bool // qwen3 normalises q and k per head
}

var architectures = map[string]architecture{
	"llama": {hfClass: "LlamaForCausalLM", modelType: "llama", permuteQK: true},
	"qwen2": {hfClass: "Qwen2ForCausalLM", modelType: "qwen2", qkvBias: true},
	"qwen3": {hfClass: "Qwen3ForCausalLM", modelType: "qwen3", qkNorm: true},
}

// hparams are the model dimensions read from the GGUF metadata.
type hparams struct {
	arch      string
	spec      architecture
	layers    int
	hidden    int
	inter     int
	heads     int
	kvHeads   int
	headDim   int
	vocab     int
	ctx       int
	ropeTheta float64
	rmsEps    float64
	tied      bool
	ropeScale map[string]any
	attnBias  bool
}

// readHParams collects and checks the dimensions the conversion needs.
func readHParams(f *File) (*hparams, error) {
	arch, ok := f.String("general.architecture")
	if !ok {
		return nil, fmt.Errorf("metadata general.architecture is missing")
	}
	spec, ok := architectures[arch]
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported (supported: llama, qwen2, qwen3)", arch)
	}
	h := &hparams{arch: arch, spec: spec}
	need := func(key string) (int, error) {
		v, ok := f.Uint(arch + "." + key)
		if !ok || v == 0 || v > math.MaxInt32 {
			return 0, fmt.Errorf("metadata %s.%s is missing or not a positive integer", arch, key)
		}
		return int(v), nil
	}
	var err error
	if h.layers, err = need("block_count"); err != nil {
		return nil, err
	}
	if h.hidden, err = need("embedding_length"); err != nil {
		return nil, err
	}
	if h.inter, err = need("feed_forward_length"); err != nil {
		return nil, err
	}
	if h.heads, err = need("attention.head_count"); err != nil {
		return nil, err
	}
	h.kvHeads = h.heads
	if _, ok := f.Metadata[arch+".attention.head_count_kv"]; ok {
		if h.kvHeads, err = need("attention.head_count_kv"); err != nil {
			return nil, err
		}
	}
	if h.heads%h.kvHeads != 0 {
		return nil, fmt.Errorf("%s.attention.head_count %d is not a multiple of head_count_kv %d", arch, h.heads, h.kvHeads)
	}
	h.headDim = h.hidden / h.heads
	if _, ok := f.Metadata[arch+".attention.key_length"]; ok {
		if h.headDim, err = need("attention.key_length"); err != nil {
			return nil, err
		}
	}
	if v, ok := f.Uint(arch + ".attention.value_length"); ok && int(v) != h.headDim {
		return nil, fmt.Errorf("%s.attention.value_length %d differs from key_length %d; not supported", arch, v, h.headDim)
	}
	if v, ok := f.Uint(arch + ".rope.dimension_count"); ok && int(v) != h.headDim {
		return nil, fmt.Errorf("%s.rope.dimension_count %d differs from the head size %d (partial rotary embeddings are not supported)", arch, v, h.headDim)
	}
	h.ctx = 2048
	if v, ok := f.Uint(arch + ".context_length"); ok && v > 0 && v <= math.MaxInt32 {
		h.ctx = int(v)
	}
	h.ropeTheta = 10000
	if v, ok := f.Float(arch + ".rope.freq_base"); ok {
		h.ropeTheta = v
	}
	h.rmsEps = 1e-6
	if v, ok := f.Float(arch + ".attention.layer_norm_rms_epsilon"); ok {
		h.rmsEps = v
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return nil, fmt.Errorf("tensor token_embd.weight is missing")
	}
	if len(emb.Dims) != 2 || int(emb.Dims[0]) != h.hidden {
		return nil, fmt.Errorf("tensor token_embd.weight has dims %v, want [%d, vocab]", emb.Dims, h.hidden)
	}
	h.vocab = int(emb.Dims[1])
	_, hasOutput := f.Tensor("output.weight")
	h.tied = !hasOutput
	if _, ok := f.Tensor("blk.0.attn_q.bias"); ok {
		h.attnBias = true
	}
	if err := h.readRopeScaling(f); err != nil {
		return nil, err
	}
	return h, nil
}

// readRopeScaling maps GGUF RoPE scaling to a Hugging Face rope_scaling
// object. Llama 3 checkpoints carry their scaling only as the per-frequency
// factors of a rope_freqs tensor; the parameters are recovered from it.
func (h *hparams) readRopeScaling(f *File) error {
	p := h.arch + ".rope.scaling."
	if t, ok := f.Tensor("rope_freqs.weight"); ok {
		freqs, err := f.Float32(t)
		if err != nil {
			return err
		}
		if len(freqs) != h.headDim/2 {
			return fmt.Errorf("tensor rope_freqs.weight has %d factors, want head size / 2 = %d", len(freqs), h.headDim/2)
		}
		rs, err := llama3RopeScaling(freqs, h.ropeTheta, h.headDim)
		if err != nil {
			return err
		}
		h.ropeScale = rs
		return nil
	}
	typ, _ := f.String(p + "type")
	factor, hasFactor := f.Float(p + "factor")
	switch typ {
	case "", "none":
		if hasFactor && factor != 1 && typ == "" {
			// Older converters wrote only rope.scale_linear.
			typ = "linear"
		} else if v, ok := f.Float(h.arch + ".rope.scale_linear"); ok && v != 1 {
			typ, factor, hasFactor = "linear", v, true
		} else {
			return nil
		}
	}
	if !hasFactor || factor <= 0 {
		return fmt.Errorf("metadata %sfactor is missing for rope scaling type %q", p, typ)
	}
	switch typ {
	case "linear":
		h.ropeScale = map[string]any{"rope_type": "linear", "type": "linear", "factor": factor}
	case "yarn":
		rs := map[string]any{"rope_type": "yarn", "type": "yarn", "factor": factor}
		if v, ok := f.Uint(p + "original_context_length"); ok {
			rs["original_max_position_embeddings"] = v
		}
		h.ropeScale = rs
	default:
		return fmt.Errorf("rope scaling type %q is not supported (supported: linear, yarn, llama3 rope_freqs)", typ)
	}
	return nil
}

// llama3RopeScaling inverts llama.cpp's rope_freqs computation: frequencies
// whose wavelength is below old_ctx/high_freq_factor keep factor 1, those
// above old_ctx/low_freq_factor get the full factor, and the band between
// blends the two. With low_freq_factor fixed at 1 (as in every Llama 3.x
// release) two blended points determine the rest; with one, high_freq_factor
// is taken as 4, and with none, original_max_position_embeddings as 8192
// too. The result is accepted only if it reproduces every stored factor.
func llama3RopeScaling(freqs []float32, theta float64, headDim int) (map[string]any, error) {
	factor := 1.0
	for _, r := range freqs {
		factor = math.Max(factor, float64(r))
	}
	invFreq := make([]float64, len(freqs))
	for i := range freqs {
		invFreq[i] = 1 / math.Pow(theta, float64(2*i)/float64(headDim))
	}
	lowFF, highFF, oldCtx := 1.0, 4.0, 8192.0
	var blended []int
	for i, r := range freqs {
		if float64(r) > 1+1e-6 && float64(r) < factor*(1-1e-6) {
			blended = append(blended, i)
		}
	}
	smooth := func(i int) float64 {
		return (1/float64(freqs[i]) - 1/factor) / (1 - 1/factor)
	}
	switch {
	case len(blended) == 1:
		// One blended point fixes old_ctx once high_freq_factor is taken as 4.
		i := blended[0]
		oldCtx = 2 * math.Pi / invFreq[i] * (smooth(i)*(highFF-lowFF) + lowFF)
	case len(blended) >= 2:
		// smooth_i = (1/r_i - 1/factor) / (1 - 1/factor) = a·invFreq_i + b with
		// a = oldCtx / (2π (high - low)) and b = -low / (high - low).
		i, j := blended[0], blended[len(blended)-1]
		a := (smooth(j) - smooth(i)) / (invFreq[j] - invFreq[i])
		b := smooth(i) - a*invFreq[i]
		if b < 0 {
			highFF = lowFF - lowFF/b
			oldCtx = a * 2 * math.Pi * (highFF - lowFF)
		}
	}
	oldCtx = math.Round(oldCtx)
	highFF = math.Round(highFF*1e3) / 1e3
	for i, inv := range invFreq {
		wavelen := 2 * math.Pi / inv
		want := 1.0
		switch {
		case wavelen < oldCtx/highFF:
		case wavelen > oldCtx/lowFF:
			want = factor
		default:
			s := (oldCtx/wavelen - lowFF) / (highFF - lowFF)
			want = 1 / ((1-s)/factor + s)
		}
		if math.Abs(want-float64(freqs[i])) > 1e-3*want {
			return nil, fmt.Errorf("tensor rope_freqs.weight does not follow the llama3 rope scaling (factor %d is %g, expected %g); not supported", i, freqs[i], want)
		}
	}
	return map[string]any{
		"rope_type": "llama3", "factor": factor, "low_freq_factor": lowFF, "high_freq_factor": highFF,
		"original_max_position_embeddings": int(oldCtx),
	}, nil
}

// config returns the Hugging Face config.json contents.
func (h *hparams) config(f *File, dtype safetensors.DType) map[string]any {
	cfg := map[string]any{
		"architectures":           []string{h.spec.hfClass},
		"model_type":              h.spec.modelType,
		"vocab_size":              h.vocab,
		"hidden_size":             h.hidden,
		"intermediate_size":       h.inter,
		"num_hidden_layers":       h.layers,
		"num_attention_heads":     h.heads,
		"num_key_value_heads":     h.kvHeads,
		"head_dim":                h.headDim,
		"max_position_embeddings": h.ctx,
		"rms_norm_eps":            h.rmsEps,
		"rope_theta":              h.ropeTheta,
		"rope_scaling":            nil,
		"tie_word_embeddings":     h.tied,
		"hidden_act":              "silu",
		"initializer_range":       0.02,
		"use_cache":               true,
		"torch_dtype":             torchDType(dtype),
	}
	if h.ropeScale != nil {
		cfg["rope_scaling"] = h.ropeScale
	}
	switch h.arch {
	case "llama":
		cfg["attention_bias"] = h.attnBias
		cfg["mlp_bias"] = false
		cfg["pretraining_tp"] = 1
	case "qwen2":
		cfg["use_sliding_window"] = false
		cfg["sliding_window"] = nil
		cfg["max_window_layers"] = h.layers
	case "qwen3":
		cfg["attention_bias"] = h.attnBias
		cfg["use_sliding_window"] = false
		cfg["sliding_window"] = nil
		cfg["max_window_layers"] = h.layers
	}
	for key, name := range map[string]string{"bos_token_id": "tokenizer.ggml.bos_token_id", "eos_token_id": "tokenizer.ggml.eos_token_id", "pad_token_id": "tokenizer.ggml.padding_token_id"} {
		if v, ok := f.Uint(name); ok {
			cfg[key] = v
		}
	}
	if name, ok := f.String("general.name"); ok {
		cfg["_name_or_path"] = name
	}
	return cfg
}

func torchDType(d safetensors.DType) string {
	switch d {
	case safetensors.BF16:
		return "bfloat16"
	case safetensors.F16:
		return "float16"
	}
	return "float32"
}

var blockTensor = regexp.MustCompile(`^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$`)

// blockNames maps per-layer GGUF tensor names to Hugging Face module paths.
var blockNames = map[string]string{
	"attn_norm":   "input_layernorm",
	"ffn_norm":    "post_attention_layernorm",
	"attn_q":      "self_attn.q_proj",
	"attn_k":      "self_attn.k_proj",
	"attn_v":      "self_attn.v_proj",
	"attn_output": "self_attn.o_proj",
	"attn_q_norm": "self_attn.q_norm",
	"attn_k_norm": "self_attn.k_norm",
	"ffn_gate":    "mlp.gate_proj",
	"ffn_up":      "mlp.up_proj",
	"ffn_down":    "mlp.down_proj",
}

// HFName returns the Hugging Face name of a GGUF tensor, or "" for a tensor
// the conversion does not carry over (rope_freqs, folded into config.json).
func HFName(name string) (string, error) {
	switch name {
	case "token_embd.weight":
		return "model.embed_tokens.weight", nil
	case "output_norm.weight":
		return "model.norm.weight", nil
	case "output.weight":
		return "lm_head.weight", nil
	case "rope_freqs.weight":
		return "", nil
	}
	m := blockTensor.FindStringSubmatch(name)
	if m == nil || blockNames[m[2]] == "" {
		return "", fmt.Errorf("tensor %q has no Hugging Face counterpart", name)
	}
	return "model.layers." + m[1] + "." + blockNames[m[2]] + "." + m[3], nil
}

// expectedShapes lists every tensor the Hugging Face model needs, with its
// row-major shape.
func (h *hparams) expectedShapes() map[string][]int {
	q, kv := h.heads*h.headDim, h.kvHeads*h.headDim
	s := map[string][]int{
		"model.embed_tokens.weight": {h.vocab, h.hidden},
		"model.norm.weight":         {h.hidden},
	}
	if !h.tied {
		s["lm_head.weight"] = []int{h.vocab, h.hidden}
	}
	for l := 0; l < h.layers; l++ {
		p := "model.layers." + strconv.Itoa(l) + "."
		s[p+"input_layernorm.weight"] = []int{h.hidden}
		s[p+"post_attention_layernorm.weight"] = []int{h.hidden}
		s[p+"self_attn.q_proj.weight"] = []int{q, h.hidden}
		s[p+"self_attn.k_proj.weight"] = []int{kv, h.hidden}
		s[p+"self_attn.v_proj.weight"] = []int{kv, h.hidden}
		s[p+"self_attn.o_proj.weight"] = []int{h.hidden, q}
		s[p+"mlp.gate_proj.weight"] = []int{h.inter, h.hidden}
		s[p+"mlp.up_proj.weight"] = []int{h.inter, h.hidden}
		s[p+"mlp.down_proj.weight"] = []int{h.hidden, h.inter}
		if h.spec.qkvBias || h.attnBias {
			s[p+"self_attn.q_proj.bias"] = []int{q}
			s[p+"self_attn.k_proj.bias"] = []int{kv}
			s[p+"self_attn.v_proj.bias"] = []int{kv}
		}
		if h.spec.qkNorm {
			s[p+"self_attn.q_norm.weight"] = []int{h.headDim}
			s[p+"self_attn.k_norm.weight"] = []int{h.headDim}
		}
	}
	return s
}

// unpermuteRows undoes llama.cpp's permute() of q_proj/k_proj: within each
// head, GGUF row (i, half) holds Hugging Face row (half, i), where i runs
// over headDim/2 and half ∈ {0,1}. rowLen is the number of columns (1 for
// a bias).
func unpermuteRows(data []float32, heads, rowLen int) ([]float32, error) {
	rows := len(data) / rowLen
	if rows%heads != 0 || (rows/heads)%2 != 0 {
		return nil, fmt.Errorf("%d rows cannot be split into %d heads of even size", rows, heads)
	}
	hd := rows / heads
	half := hd / 2
	out := make([]float32, len(data))
	for h := 0; h < heads; h++ {
		for p := 0; p < 2; p++ {
			for i := 0; i < half; i++ {
				src := (h*hd + i*2 + p) * rowLen
				dst := (h*hd + p*half + i) * rowLen
				copy(out[dst:dst+rowLen], data[src:src+rowLen])
			}
		}
	}
	return out, nil
}

// Import converts the GGUF file at path into a Hugging Face checkpoint in
// outDir: config.json, generation_config.json, model.safetensors (or
// shards), tokenizer.json and tokenizer_config.json. Everything is written
// into a temporary directory beside outDir and renamed into place, so
// outDir is never left half written; an existing outDir is refused.
func Import(ctx context.Context, path, outDir string, opts ImportOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	dtype := opts.DType
	if dtype == "" {
		dtype = safetensors.F32
	}
	if dtype != safetensors.F32 && dtype != safetensors.BF16 && dtype != safetensors.F16 {
		return fmt.Errorf("output dtype %q is not supported (use F32, BF16 or F16)", dtype)
	}
	outDir = filepath.Clean(outDir)
	outOpts := outdir.Options{Force: opts.Force, ForceFlag: "--force"}
	if err := outdir.Check(outDir, outdir.Model, outOpts); err != nil {
		return err
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("gguf %s is a directory, not a GGUF file: give the path of a .gguf file", path)
	}
	f, err := Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h, err := readHParams(f)
	if err != nil {
		return fmt.Errorf("gguf %s: %w", path, err)
	}
	tok, err := buildTokenizer(f, h.ctx)
	if err != nil {
		return fmt.Errorf("gguf %s: tokenizer: %w", path, err)
	}
	if len(tok.vocab) > h.vocab {
		return fmt.Errorf("gguf %s: tokenizer has %d tokens but token_embd.weight only %d rows", path, len(tok.vocab), h.vocab)
	}

	// Map and check every tensor before writing anything.
	want := h.expectedShapes()
	source := map[string]TensorInfo{}
	specs := map[string]safetensors.Spec{}
	for _, t := range f.Tensors {
		name, err := HFName(t.Name)
		if err != nil {
			return fmt.Errorf("gguf %s: %w", path, err)
		}
		if name == "" {
			continue
		}
		shape, ok := want[name]
		if !ok {
			return fmt.Errorf("gguf %s: tensor %q (%s) is not part of a %s model with these dimensions", path, t.Name, name, h.arch)
		}
		if got := t.Shape(); !equalInts(got, shape) {
			return fmt.Errorf("gguf %s: tensor %q has shape %v, want %v", path, t.Name, got, shape)
		}
		if _, bytes := t.Type.blockLayout(); bytes == 0 || !canDequantize(t.Type) {
			return fmt.Errorf("gguf %s: tensor %q: ggml type %s is not supported (supported: F32, F16, BF16, F64, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)", path, t.Name, t.Type)
		}
		source[name] = t
		specs[name] = safetensors.Spec{DType: dtype, Shape: shape}
	}
	for name := range want {
		if _, ok := source[name]; !ok {
			return fmt.Errorf("gguf %s: no tensor for %s", path, name)
		}
	}

	return outdir.Write(outDir, outdir.Model, outOpts, func(tmp string) error {
		return writeImport(ctx, tmp, path, f, h, tok, source, specs, dtype, opts.MaxShardBytes, log)
	})
}

// writeImport writes the converted checkpoint into the empty directory tmp.
func writeImport(ctx context.Context, tmp, path string, f *File, h *hparams, tok *hfTokenizer,
	source map[string]TensorInfo, specs map[string]safetensors.Spec, dtype safetensors.DType, maxShard int64, log *slog.Logger) error {
	done := 0
	err := safetensors.WriteDirFunc(tmp, specs, maxShard, func(name string) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := source[name]
		vals, err := f.Float32(t)
		if err != nil {
			return nil, err
		}
		if part := blockPart(t.Name); h.spec.permuteQK && (part == "attn_q" || part == "attn_k") {
			heads := h.heads
			if part == "attn_k" {
				heads = h.kvHeads
			}
			rowLen := 1
			if len(t.Dims) == 2 {
				rowLen = int(t.Dims[0])
			}
			if vals, err = unpermuteRows(vals, heads, rowLen); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
			}
		}
		ts, err := safetensors.FromFloat32(specs[name].Shape, vals, dtype)
		if err != nil {
			return nil, err
		}
		done++
		if done%50 == 0 || done == len(specs) {
			log.Info("gguf import", "tensors", done, "of", len(specs))
		}
		return ts.Data, nil
	})
	if err != nil {
		return fmt.Errorf("gguf %s: writing weights: %w", path, err)
	}
	files := map[string]any{
		"config.json":            h.config(f, dtype),
		"generation_config.json": generationConfig(f),
		"tokenizer.json":         tok.json,
		"tokenizer_config.json":  tok.config,
	}
	for name, v := range files {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // chat templates and special tokens are full of < and >
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	log.Info("gguf import done", "gguf", path, "arch", h.arch, "tensors", len(specs), "dtype", dtype)
	return nil
}

// blockPart returns the module part of a per-layer tensor name ("attn_q"
// for blk.3.attn_q.weight), or "".
func blockPart(name string) string {
	if m := blockTensor.FindStringSubmatch(name); m != nil {
		return m[2]
	}
	return ""
}

func canDequantize(t Type) bool {
	switch t {
	case TypeF32, TypeF16, TypeBF16, TypeF64, TypeQ8_0, TypeQ4_0, TypeQ4_1, TypeQ4_K, TypeQ6_K:
		return true
	}
	return false
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// generationConfig carries the special token ids; end-of-turn tokens of
// chat models are stop tokens too.
func generationConfig(f *File) map[string]any {
	g := map[string]any{"_from_model_config": true}
	if v, ok := f.Uint("tokenizer.ggml.bos_token_id"); ok {
		g["bos_token_id"] = v
	}
	var eos []uint64
	for _, k := range []string{"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"} {
		if v, ok := f.Uint(k); ok && (len(eos) == 0 || eos[0] != v) {
			eos = append(eos, v)
		}
	}
	switch len(eos) {
	case 1:
		g["eos_token_id"] = eos[0]
	case 2:
		g["eos_token_id"] = eos
	}
	if v, ok := f.Uint("tokenizer.ggml.padding_token_id"); ok {
		g["pad_token_id"] = v
	}
	return g
}
