package model

import (
	"encoding/json"
	"fmt"
	"github.com/ssp-project/ssp/internal/safetensors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Load reads a Hugging Face checkpoint directory: config.json and the
// *.safetensors weights (sharded or not). Weights of another dtype are
// converted to opts.DType.
func Load(dir string, opts LoadOptions) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	m, err := newModel(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	tensors, fileOf, err := readWeights(dir)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, s := range m.specs {
		known[s.name] = true
		t, ok := tensors[s.name]
		if !ok {
			return nil, fmt.Errorf("%s: tensor %s is missing from %s", dir, s.name, strings.Join(files(fileOf), ", "))
		}
		if !slices.Equal(t.Shape, s.shape) {
			return nil, fmt.Errorf("%s: tensor %s has shape %v, config.json implies %v", fileOf[s.name], s.name, t.Shape, s.shape)
		}
		data, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", fileOf[s.name], s.name, err)
		}
		m.setWeight(s.name, s.shape, data)
	}
	for name := range tensors {
		if !known[name] && !(name == wLMHead && cfg.TieWordEmbeddings) {
			slog.Debug("ignoring checkpoint tensor", "dir", dir, "tensor", name)
		}
	}
	m.sourceDir = dir
	return m, nil
}

// weightFiles lists the checkpoint's weight files: the shards named by
// model.safetensors.index.json, else model.safetensors, else
// model-*.safetensors. Other *.safetensors files in the directory (optimizer
// state, references) are not weights.
func weightFiles(dir string) ([]string, error) {
	index := filepath.Join(dir, "model.safetensors.index.json")
	if data, err := os.ReadFile(index); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, fmt.Errorf("%s: %w", index, err)
		}
		seen := map[string]bool{}
		var out []string
		for _, f := range idx.WeightMap {
			if !seen[f] {
				seen[f] = true
				out = append(out, filepath.Join(dir, filepath.Base(f)))
			}
		}
		sort.Strings(out)
		return out, nil
	}
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		return []string{single}, nil
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "model-*.safetensors"))
	if len(shards) == 0 {
		return nil, fmt.Errorf("%s: no model.safetensors, model.safetensors.index.json or model-*.safetensors", dir)
	}
	sort.Strings(shards)
	return shards, nil
}

// readWeights reads every weight file and remembers which file held each
// tensor, for error messages.
func readWeights(dir string) (map[string]*safetensors.Tensor, map[string]string, error) {
	paths, err := weightFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	all := map[string]*safetensors.Tensor{}
	fileOf := map[string]string{}
	for _, p := range paths {
		ts, err := safetensors.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("read weights %s: %w", p, err)
		}
		for name, t := range ts {
			all[name] = t
			fileOf[name] = p
		}
	}
	return all, fileOf, nil
}

func files(fileOf map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fileOf {
		if !seen[f] {
			seen[f] = true
			out = append(out, filepath.Base(f))
		}
	}
	sort.Strings(out)
	return out
}
