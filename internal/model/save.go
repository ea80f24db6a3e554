package model

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/safetensors"
)

// Save writes the model as a Hugging Face checkpoint directory: config.json
// and model.safetensors with Hugging Face names (a tied embedding is
// written once, as transformers does), in the dtype of config.json. A model
// with LoRA adapters is written merged, W + (alpha/r)·B·A, as PEFT's
// merge_and_unload leaves it (SaveAdapter writes the adapters alone). The
// tokenizer and generation files of the checkpoint the model was loaded
// from are copied along. The directory is assembled under a temporary name
// and renamed into place (package outdir), so a crash never leaves a
// half-written checkpoint; an existing checkpoint that ssp wrote is
// replaced, a file or any other non-empty directory is refused.
func (m *Model) Save(dir string) error {
	return m.SaveTo(dir, outdir.Options{})
}

// SaveTo is Save with the replacement rules of o (o.Force replaces any
// directory).
func (m *Model) SaveTo(dir string, o outdir.Options) error {
	dir = filepath.Clean(dir)
	return outdir.Write(dir, outdir.Model, o, func(tmp string) error { return m.saveInto(tmp, dir) })
}

// saveInto writes the checkpoint's files into the empty directory tmp;
// errors name dir.
func (m *Model) saveInto(tmp, dir string) error {
	stDType := safetensors.DType("F32")
	if d := strings.ToLower(m.Config.DType); d == "bfloat16" || d == "bf16" {
		stDType = "BF16"
	}
	weights := map[string]*safetensors.Tensor{}
	m.mu.Lock()
	for _, s := range m.specs {
		data, err := m.mergedWeight(s.name)
		if err != nil {
			m.mu.Unlock()
			return fmt.Errorf("save model %s: %w", dir, err)
		}
		if weights[s.name], err = safetensors.FromFloat32(s.shape, data, stDType); err != nil {
			m.mu.Unlock()
			return fmt.Errorf("save model %s: tensor %s: %w", dir, s.name, err)
		}
	}
	m.mu.Unlock()
	if err := safetensors.WriteFile(filepath.Join(tmp, "model.safetensors"), weights, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("save model %s: %w", dir, err)
	}
	if err := m.Config.writeFile(tmp); err != nil {
		return fmt.Errorf("save model %s: %w", dir, err)
	}
	if m.sourceDir != "" {
		if err := copyCompanionFiles(m.sourceDir, tmp); err != nil {
			return fmt.Errorf("save model %s: %w", dir, err)
		}
	}
	return nil
}

// companionFiles are the non-weight files of a checkpoint that travel with it.
var companionFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
	"vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "tokenizer.model",
}

func copyCompanionFiles(from, to string) error {
	for _, name := range companionFiles {
		src, err := os.Open(filepath.Join(from, name))
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return err
		}
		dst, err := os.Create(filepath.Join(to, name))
		if err == nil {
			_, err = io.Copy(dst, src)
			if cerr := dst.Close(); err == nil {
				err = cerr
			}
		}
		src.Close()
		if err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
	}
	return nil
}

// trainerState is the JSON half of a saved optimizer state.
type trainerState struct {
	Step      int             `json:"step"`
	Optimizer OptimizerConfig `json:"optimizer"`
	ModelType string          `json:"model_type"`
	// LoRA is the adapters the moments belong to; absent when every
	// weight was trained.
	LoRA *LoRAConfig `json:"lora,omitempty"`
}

// SaveState writes the optimizer state (AdamW moments as
// optimizer.safetensors, named exp_avg.<param> and exp_avg_sq.<param>, and
// the step count in trainer_state.json) into dir, atomically.
func (t *Trainer) SaveState(dir string) error {
	return outdir.Write(filepath.Clean(dir), outdir.Optimizer, outdir.Options{}, t.saveStateInto)
}

func (t *Trainer) saveStateInto(tmp string) error {
	out := map[string]*safetensors.Tensor{}
	t.m.mu.Lock()
	for _, s := range t.params {
		for prefix, v := range map[string]map[string]*mlctx.Variable{"exp_avg.": t.moment1, "exp_avg_sq.": t.moment2} {
			val, err := v[s.name].Value()
			if err != nil {
				t.m.mu.Unlock()
				return fmt.Errorf("save optimizer state: %w", err)
			}
			data, err := tensorFloat32(val)
			if err != nil {
				t.m.mu.Unlock()
				return fmt.Errorf("save optimizer state: %w", err)
			}
			out[prefix+s.name], _ = safetensors.FromFloat32(s.shape, data, "F32")
		}
	}
	state := trainerState{Step: t.step, Optimizer: t.cfg, ModelType: t.m.Config.ModelType}
	if cfg, ok := t.m.LoRA(); ok {
		state.LoRA = &cfg
	}
	t.m.mu.Unlock()
	if err := safetensors.WriteFile(filepath.Join(tmp, "optimizer.safetensors"), out, nil); err != nil {
		return fmt.Errorf("save optimizer state: %w", err)
	}
	js, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "trainer_state.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("save optimizer state: %w", err)
	}
	return nil
}

// LoadState restores what SaveState wrote. The optimizer hyper-parameters
// stay those the Trainer was created with; the step count and moments are
// restored.
func (t *Trainer) LoadState(dir string) error {
	js, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		return fmt.Errorf("load optimizer state: %w", err)
	}
	var state trainerState
	if err := json.Unmarshal(js, &state); err != nil {
		return fmt.Errorf("load optimizer state: %s: %w", filepath.Join(dir, "trainer_state.json"), err)
	}
	if state.ModelType != t.m.Config.ModelType {
		return fmt.Errorf("load optimizer state: %s was saved for model_type %q, the model is %q",
			dir, state.ModelType, t.m.Config.ModelType)
	}
	switch cfg, ok := t.m.LoRA(); {
	case state.LoRA != nil && !ok:
		return fmt.Errorf("load optimizer state: %s holds the moments of LoRA adapters (r %d); the model has no adapters",
			dir, state.LoRA.Rank)
	case state.LoRA == nil && ok:
		return fmt.Errorf("load optimizer state: %s holds the moments of every weight; the model trains LoRA adapters (r %d)",
			dir, cfg.Rank)
	}
	path := filepath.Join(dir, "optimizer.safetensors")
	saved, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load optimizer state: %s: %w", path, err)
	}
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	for _, s := range t.params {
		for prefix, v := range map[string]map[string]*mlctx.Variable{"exp_avg.": t.moment1, "exp_avg_sq.": t.moment2} {
			st, ok := saved[prefix+s.name]
			if !ok {
				return fmt.Errorf("load optimizer state: %s: tensor %s is missing", path, prefix+s.name)
			}
			if !slices.Equal(st.Shape, s.shape) {
				return fmt.Errorf("load optimizer state: %s: tensor %s has shape %v, want %v", path, prefix+s.name, st.Shape, s.shape)
			}
			data, err := st.Float32()
			if err != nil {
				return fmt.Errorf("load optimizer state: %s: tensor %s: %w", path, prefix+s.name, err)
			}
			if err := v[s.name].SetValue(tensors.FromFlatDataAndDimensions(data, s.shape...)); err != nil {
				return fmt.Errorf("load optimizer state: %w", err)
			}
		}
	}
	t.step = state.Step
	return nil
}
