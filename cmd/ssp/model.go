package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

func init() {
	register(command{name: "model logits", summary: "run a checkpoint over token ids and write the logits", run: runModelLogits})
	register(command{name: "model generate", summary: "continue a text prompt (chat template applied, text streamed) or token-id prompts with a checkpoint", run: runModelGenerate})
	register(command{name: "model grads", summary: "write the language-modelling loss and its gradients", run: runModelGrads})
	register(command{name: "model init", summary: "write a randomly initialised checkpoint for a config.json", run: runModelInit})
	register(command{name: "model merge", summary: "merge a LoRA adapter into its base model and write a full checkpoint", run: runModelMerge})
}

// modelFlags are the flags every model command shares.
type modelFlags struct {
	dir, adapter, backend, dtype string
}

func addModelFlags(fs *pflag.FlagSet, withModel bool) *modelFlags {
	f := &modelFlags{}
	if withModel {
		fs.StringVar(&f.dir, "model", "", "Hugging Face checkpoint directory (config.json + *.safetensors)")
		fs.StringVar(&f.adapter, "adapter", "", "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) to load onto --model")
	}
	fs.StringVar(&f.backend, "backend", "", backendHelp)
	fs.StringVar(&f.dtype, "dtype", "float32", "weight dtype on the device: float32 or bfloat16")
	return f
}

func (f *modelFlags) load() (*model.Model, error) {
	if f.dir == "" {
		return nil, fmt.Errorf("%w: --model is required", errUsage)
	}
	return loadModel(f.dir, f.adapter, model.LoadOptions{Backend: f.backend, DType: f.dtype})
}

// loadModel loads the checkpoint dir and, when adapter is set, the PEFT LoRA
// adapter in that directory onto it. An adapter directory given as the
// model is refused with what to pass instead.
func loadModel(dir, adapter string, opts model.LoadOptions) (*model.Model, error) {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil && model.IsAdapterDir(dir) {
		return nil, fmt.Errorf("%w: --model %s holds a LoRA adapter, not a model: pass its base model as --model and this directory as --adapter", errUsage, dir)
	}
	m, err := model.Load(dir, opts)
	if err != nil {
		return nil, err
	}
	if adapter != "" {
		if err := m.LoadAdapter(adapter); err != nil {
			m.Close()
			return nil, fmt.Errorf("--adapter: %w", err)
		}
	}
	return m, nil
}

// runModelMerge writes base + adapter as a plain Hugging Face checkpoint:
// every adapted weight W becomes W + (alpha/r)·B·A, as PEFT's
// merge_and_unload computes it, stored in the base's dtype.
func runModelMerge(ctx context.Context, args []string) error {
	fs := newFlags("model merge", "--base DIR --adapter DIR --out DIR [--force]")
	base := fs.String("base", "", "base model checkpoint directory the adapter was trained on")
	adapter := fs.String("adapter", "", "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors)")
	out := fs.String("out", "", "checkpoint directory to create, or an ssp checkpoint to replace")
	force := fs.Bool("force", false, "replace --out even when it is a directory that ssp did not write (never a file)")
	backend := fs.String("backend", "", backendHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *base == "" || *adapter == "" || *out == "" {
		return fmt.Errorf("%w: --base, --adapter and --out are required", errUsage)
	}
	outOpts := outdir.Options{Force: *force, ForceFlag: "--force"}
	if err := outdir.Check(*out, outdir.Model, outOpts); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m, err := loadModel(*base, *adapter, model.LoadOptions{Backend: *backend})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.SaveTo(*out, outOpts); err != nil {
		return err
	}
	lc, _ := m.LoRA()
	fmt.Fprintf(os.Stderr, "wrote %s: %s with %s merged (r %d, alpha %g, %s)\n", *out, *base, *adapter, lc.Rank, lc.Alpha, strings.Join(lc.Targets, ", "))
	return nil
}

// idsInput is the JSON input of the model commands, shaped like the
// arguments of a transformers model call.
type idsInput struct {
	InputIDs      [][]int64 `json:"input_ids"`
	AttentionMask [][]int64 `json:"attention_mask"`
	PadTokenID    *int64    `json:"pad_token_id"`
}

func readIDsInput(path string) (ids, mask [][]int32, in idsInput, err error) {
	if path == "" {
		return nil, nil, in, fmt.Errorf("%w: --input is required", errUsage)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, in, err
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, nil, in, fmt.Errorf("%s: %w", path, err)
	}
	if len(in.InputIDs) == 0 {
		return nil, nil, in, fmt.Errorf("%s: input_ids is missing or empty", path)
	}
	convert := func(field string, rows [][]int64) ([][]int32, error) {
		out := make([][]int32, len(rows))
		for i, r := range rows {
			if len(r) != len(rows[0]) {
				return nil, fmt.Errorf("%s: %s row %d has %d entries, row 0 has %d", path, field, i, len(r), len(rows[0]))
			}
			out[i] = make([]int32, len(r))
			for j, v := range r {
				if v < 0 || v > math.MaxInt32 {
					return nil, fmt.Errorf("%s: %s[%d][%d] = %d is out of range", path, field, i, j, v)
				}
				out[i][j] = int32(v)
			}
		}
		return out, nil
	}
	if ids, err = convert("input_ids", in.InputIDs); err != nil {
		return nil, nil, in, err
	}
	if in.AttentionMask != nil {
		if mask, err = convert("attention_mask", in.AttentionMask); err != nil {
			return nil, nil, in, err
		}
		if len(mask) != len(ids) || len(mask[0]) != len(ids[0]) {
			return nil, nil, in, fmt.Errorf("%s: attention_mask is [%d,%d], input_ids is [%d,%d]",
				path, len(mask), len(mask[0]), len(ids), len(ids[0]))
		}
	}
	return ids, mask, in, nil
}

func runModelLogits(ctx context.Context, args []string) error {
	fs := newFlags("model logits", "--model DIR --input F.json --out F.safetensors")
	mf := addModelFlags(fs, true)
	input := fs.String("input", "", `JSON {"input_ids": [[...]], "attention_mask": [[...]]}`)
	out := fs.String("out", "", "output safetensors file (float32 logits [B,T,V])")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	ids, mask, _, err := readIDsInput(*input)
	if err != nil {
		return err
	}
	m, err := mf.load()
	if err != nil {
		return err
	}
	logits, err := m.Logits(ctx, ids, mask)
	if err != nil {
		return err
	}
	return logits.WriteSafetensors(*out)
}

func runModelGrads(ctx context.Context, args []string) error {
	fs := newFlags("model grads", "--model DIR --input F.json --out F.safetensors")
	mf := addModelFlags(fs, true)
	input := fs.String("input", "", `JSON {"input_ids": [[...]]}`)
	out := fs.String("out", "", "output safetensors file: loss and one gradient per parameter")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	ids, mask, _, err := readIDsInput(*input)
	if err != nil {
		return err
	}
	if mask != nil {
		return fmt.Errorf("%s: attention_mask is not supported by model grads (every token is a label)", *input)
	}
	m, err := mf.load()
	if err != nil {
		return err
	}
	grads, err := m.LMGradients(ctx, ids)
	if err != nil {
		return err
	}
	return grads.WriteSafetensors(*out)
}

// stopFlags collects repeated --stop values.
type stopFlags []string

func (s *stopFlags) String() string     { return fmt.Sprint(*s) }
func (s *stopFlags) Set(v string) error { *s = append(*s, v); return nil }
func (s *stopFlags) Type() string       { return "strings" }

func runModelGenerate(ctx context.Context, args []string) error {
	fs := newFlags("model generate",
		"--model DIR (--prompt TEXT [--system TEXT] [--raw] | --input F.json) [--max-new-tokens N] [--greedy | --temperature T --top-p P --top-k K --seed S] [--stop STR]...")
	mf := addModelFlags(fs, true)
	prompt := fs.String("prompt", "", "text to continue: wrapped in the checkpoint's chat template as a user message, the answer streamed to stdout as text")
	system := fs.String("system", "", "system message put before --prompt in the chat template")
	raw := fs.Bool("raw", false, "with --prompt: continue the text as it is, without the chat template")
	input := fs.String("input", "", `token ids instead of --prompt: JSON {"input_ids": [[...]], "attention_mask": [[...]], "pad_token_id": N}; writes {"sequences": ...} as transformers' generate`)
	maxNew := fs.Int("max-new-tokens", 0, "tokens to generate per row (0: 256 with --prompt; required with --input)")
	greedy := fs.Bool("greedy", false, "greedy decoding (the default when --temperature is 0)")
	temperature := fs.Float64("temperature", 0, "sampling temperature; 0 means greedy")
	topP := fs.Float64("top-p", 1, "nucleus sampling mass")
	topK := fs.Int("top-k", 0, "sample among the K most probable tokens (0: all)")
	seed := fs.Int64("seed", 0, "sampling seed")
	var stops stopFlags
	fs.Var(&stops, "stop", "stop string (repeatable); needs tokenizer.json in the model directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (the text goes in --prompt)", errUsage, fs.Arg(0))
	}
	if *maxNew == 0 && *prompt != "" {
		*maxNew = 256
	}
	switch {
	case (*prompt == "") == (*input == ""):
		return fmt.Errorf("%w: give exactly one of --prompt and --input", errUsage)
	case (*raw || *system != "") && *prompt == "":
		return fmt.Errorf("%w: --raw and --system go with --prompt", errUsage)
	case *raw && *system != "":
		return fmt.Errorf("%w: --system needs the chat template; drop --raw", errUsage)
	case *maxNew <= 0:
		return fmt.Errorf("%w: --max-new-tokens must be positive", errUsage)
	case *greedy && *temperature > 0:
		return fmt.Errorf("%w: --greedy and --temperature are exclusive", errUsage)
	case *temperature < 0 || *topP <= 0 || *topP > 1 || *topK < 0:
		return fmt.Errorf("%w: need --temperature >= 0, 0 < --top-p <= 1, --top-k >= 0", errUsage)
	}
	req := model.GenerateRequest{MaxNewTokens: *maxNew, Temperature: float32(*temperature), TopP: float32(*topP),
		TopK: *topK, Seed: *seed, StopStrings: stops}
	if *prompt != "" {
		if mf.dir == "" {
			return fmt.Errorf("%w: --model is required", errUsage)
		}
		tok, err := tokenizer.Load(mf.dir)
		if err != nil {
			return fmt.Errorf("--prompt needs the checkpoint's tokenizer: %w", err)
		}
		text := *prompt
		if !*raw {
			var msgs []tokenizer.Message
			if *system != "" {
				msgs = append(msgs, tokenizer.Message{Role: "system", Content: *system})
			}
			msgs = append(msgs, tokenizer.Message{Role: "user", Content: *prompt})
			if text, err = tok.ApplyChatTemplate(msgs, true); err != nil {
				return fmt.Errorf("--model %s: %w; --raw continues the prompt without it", mf.dir, err)
			}
		}
		m, err := mf.load()
		if err != nil {
			return err
		}
		defer m.Close()
		req.Prompts = [][]int32{tok.Encode(text)}
		req.Decode = tok.Decode
		eos, _ := generationTokens(mf.dir, m.Config)
		req.EOSTokenIDs = append(eos, tok.EOSTokenIDs()...)
		stream := newTextStream(os.Stdout, tok.DecodeSkipSpecial)
		req.OnToken = func(_ int, id int32) { stream.add(id) }
		if _, err := m.Generate(ctx, req); err != nil {
			return err
		}
		return stream.end()
	}
	ids, mask, in, err := readIDsInput(*input)
	if err != nil {
		return err
	}
	m, err := mf.load()
	if err != nil {
		return err
	}
	if len(stops) > 0 {
		decode, err := loadDecoder(mf.dir)
		if err != nil {
			return err
		}
		req.Decode = decode
	}
	eos, pad := generationTokens(mf.dir, m.Config)
	if in.PadTokenID != nil {
		pad = int32(*in.PadTokenID)
	}
	req.EOSTokenIDs = eos
	for b, row := range ids {
		var prompt []int32
		for j, id := range row {
			if mask == nil || mask[b][j] != 0 {
				prompt = append(prompt, id)
			}
		}
		if len(prompt) == 0 {
			return fmt.Errorf("%s: row %d has no unmasked token", *input, b)
		}
		req.Prompts = append(req.Prompts, prompt)
	}
	gens, err := m.Generate(ctx, req)
	if err != nil {
		return err
	}
	// Like transformers' generate: every row is the input row followed by
	// its new tokens, rows that finished early padded with pad_token_id.
	longest := 0
	for _, g := range gens {
		longest = max(longest, len(g.Tokens))
	}
	out := struct {
		Sequences [][]int32 `json:"sequences"`
	}{}
	for b, g := range gens {
		row := append(slices.Clone(ids[b]), g.Tokens...)
		for len(row) < len(ids[b])+longest {
			row = append(row, pad)
		}
		out.Sequences = append(out.Sequences, row)
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(out)
}

// textStream writes generated text as it comes: each new token's text is
// printed once the decoded text no longer ends in a partial UTF-8
// character. Special tokens (EOS, padding, chat markers) are not printed.
type textStream struct {
	w    io.Writer
	text *tokenizer.TextStream
	err  error
}

func newTextStream(w io.Writer, decode func([]int32) string) *textStream {
	return &textStream{w: w, text: tokenizer.NewTextStream(decode)}
}

func (s *textStream) add(id int32) {
	if piece := s.text.Add(id); piece != "" && s.err == nil {
		_, s.err = io.WriteString(s.w, piece)
	}
}

// end writes what is left and a final newline.
func (s *textStream) end() error {
	if s.err == nil {
		_, s.err = io.WriteString(s.w, s.text.Flush()+"\n")
	}
	return s.err
}

// generationTokens reads the EOS ids and the pad id generation uses:
// generation_config.json when present, else config.json; the pad falls
// back to the first EOS id, then 0.
func generationTokens(dir string, cfg model.Config) (eos []int32, pad int32) {
	for _, id := range cfg.EOSTokenIDs {
		eos = append(eos, int32(id))
	}
	pad = -1
	if cfg.PadTokenID >= 0 {
		pad = int32(cfg.PadTokenID)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
		var gc struct {
			EOS json.RawMessage `json:"eos_token_id"`
			Pad *int32          `json:"pad_token_id"`
		}
		if json.Unmarshal(data, &gc) == nil {
			var one int32
			var many []int32
			if json.Unmarshal(gc.EOS, &one) == nil {
				eos = []int32{one}
			} else if json.Unmarshal(gc.EOS, &many) == nil && len(many) > 0 {
				eos = many
			}
			if gc.Pad != nil {
				pad = *gc.Pad
			}
		}
	}
	if pad < 0 && len(eos) > 0 {
		pad = eos[0]
	}
	return eos, max(pad, 0)
}

func runModelInit(ctx context.Context, args []string) error {
	fs := newFlags("model init", "--config config.json --out DIR [--tokenizer DIR] [--seed N]")
	mf := addModelFlags(fs, false)
	configPath := fs.String("config", "", "Hugging Face config.json of the architecture")
	out := fs.String("out", "", "checkpoint directory to create, or an ssp checkpoint to replace")
	force := fs.Bool("force", false, "replace --out even when it is a directory that ssp did not write (never a file)")
	tokDir := fs.String("tokenizer", "", "directory whose tokenizer files are copied into the checkpoint")
	seed := fs.Int64("seed", 0, "initialisation seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configPath == "" || *out == "" {
		return fmt.Errorf("%w: --config and --out are required", errUsage)
	}
	outOpts := outdir.Options{Force: *force, ForceFlag: "--force"}
	if err := outdir.Check(*out, outdir.Model, outOpts); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg, err := model.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	m, err := model.Init(cfg, *seed, model.LoadOptions{Backend: mf.backend, DType: mf.dtype})
	if err != nil {
		return err
	}
	if *tokDir != "" {
		if _, err := os.Stat(filepath.Join(*tokDir, "tokenizer.json")); err != nil {
			return fmt.Errorf("--tokenizer %s: %w", *tokDir, errors.Unwrap(err))
		}
		m.SetSourceDir(*tokDir)
	}
	if err := m.SaveTo(*out, outOpts); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%s, %d parameters)\n", *out, cfg.ModelType, m.NumParameters())
	return nil
}

// loadDecoder returns a decoder of token ids for matching stop strings:
// the checkpoint's own tokenizer (package tokenizer).
func loadDecoder(dir string) (func([]int32) string, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("--stop needs the checkpoint's tokenizer: %w", err)
	}
	return tok.Decode, nil
}
