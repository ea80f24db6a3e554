package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Config is the subset of a Hugging Face config.json that the decoder
// architectures need. Both layouts are read: the classic one (rope_theta and
// rope_scaling at top level) and the transformers-5 one (rope_parameters).
type Config struct {
	ModelType             string
	HiddenSize            int
	IntermediateSize      int
	NumHiddenLayers       int
	NumAttentionHeads     int
	NumKeyValueHeads      int
	HeadDim               int
	RMSNormEps            float64
	VocabSize             int
	TieWordEmbeddings     bool
	AttentionBias         bool
	MaxPositionEmbeddings int
	InitializerRange      float64
	HiddenAct             string
	Rope                  RopeConfig
	BOSTokenID            int   // -1 when absent
	EOSTokenIDs           []int // empty when absent
	PadTokenID            int   // -1 when absent
	// DType is the checkpoint's storage dtype ("float32", "bfloat16", ...).
	DType string

	// raw keeps every field of the original file so Save writes back what
	// the architecture does not interpret (architectures, generation hints).
	raw map[string]json.RawMessage
}

// RopeConfig describes rotary position embeddings.
type RopeConfig struct {
	Theta float64
	// Type is "default" or "llama3".
	Type string
	// Llama3 frequency scaling (Type == "llama3").
	Factor                        float64
	LowFreqFactor                 float64
	HighFreqFactor                float64
	OriginalMaxPositionEmbeddings int
}

// rawConfig mirrors config.json; pointer fields tell absent from zero.
type rawConfig struct {
	ModelType             string          `json:"model_type"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	VocabSize             int             `json:"vocab_size"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         *bool           `json:"attention_bias"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	InitializerRange      *float64        `json:"initializer_range"`
	HiddenAct             string          `json:"hidden_act"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           *rawRope        `json:"rope_scaling"`
	RopeParameters        *rawRope        `json:"rope_parameters"`
	BOSTokenID            *int            `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
	PadTokenID            *int            `json:"pad_token_id"`
	TorchDType            string          `json:"torch_dtype"`
	DType                 string          `json:"dtype"`
}

type rawRope struct {
	RopeTheta                     *float64 `json:"rope_theta"`
	RopeType                      string   `json:"rope_type"`
	Type                          string   `json:"type"`
	Factor                        *float64 `json:"factor"`
	LowFreqFactor                 *float64 `json:"low_freq_factor"`
	HighFreqFactor                *float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings *int     `json:"original_max_position_embeddings"`
}

// LoadConfig reads a config.json file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read model config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses the contents of a config.json file and validates it.
func ParseConfig(data []byte) (Config, error) {
	var raw rawConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return Config{}, fmt.Errorf("parse config.json: %w", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return Config{}, fmt.Errorf("parse config.json: %w", err)
	}
	if raw.ModelType == "" {
		return Config{}, fmt.Errorf("config.json: model_type is missing")
	}
	if _, ok := architectures[raw.ModelType]; !ok {
		return Config{}, fmt.Errorf("config.json: model_type %q is not supported (supported: %v)",
			raw.ModelType, supportedModelTypes())
	}
	c := Config{
		ModelType:             raw.ModelType,
		HiddenSize:            raw.HiddenSize,
		IntermediateSize:      raw.IntermediateSize,
		NumHiddenLayers:       raw.NumHiddenLayers,
		NumAttentionHeads:     raw.NumAttentionHeads,
		VocabSize:             raw.VocabSize,
		MaxPositionEmbeddings: raw.MaxPositionEmbeddings,
		HiddenAct:             raw.HiddenAct,
		RMSNormEps:            1e-6,
		InitializerRange:      0.02,
		BOSTokenID:            -1,
		PadTokenID:            -1,
		DType:                 raw.DType,
		raw:                   all,
	}
	if c.DType == "" {
		c.DType = raw.TorchDType
	}
	if c.DType == "" {
		c.DType = "float32"
	}
	if c.HiddenAct == "" {
		c.HiddenAct = "silu"
	}
	if raw.RMSNormEps != nil {
		c.RMSNormEps = *raw.RMSNormEps
	}
	if raw.InitializerRange != nil {
		c.InitializerRange = *raw.InitializerRange
	}
	c.NumKeyValueHeads = c.NumAttentionHeads
	if raw.NumKeyValueHeads != nil {
		c.NumKeyValueHeads = *raw.NumKeyValueHeads
	}
	if raw.HeadDim != nil && *raw.HeadDim > 0 {
		c.HeadDim = *raw.HeadDim
	} else if c.NumAttentionHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if raw.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *raw.TieWordEmbeddings
	}
	if raw.AttentionBias != nil {
		c.AttentionBias = *raw.AttentionBias
	}
	if raw.BOSTokenID != nil {
		c.BOSTokenID = *raw.BOSTokenID
	}
	if raw.PadTokenID != nil {
		c.PadTokenID = *raw.PadTokenID
	}
	if len(raw.EOSTokenID) > 0 && string(raw.EOSTokenID) != "null" {
		var one int
		if err := json.Unmarshal(raw.EOSTokenID, &one); err == nil {
			c.EOSTokenIDs = []int{one}
		} else if err := json.Unmarshal(raw.EOSTokenID, &c.EOSTokenIDs); err != nil {
			return Config{}, fmt.Errorf("config.json: eos_token_id must be an integer or a list of integers: %s", raw.EOSTokenID)
		}
	}

	// Rotary embeddings: transformers 5 nests everything in rope_parameters;
	// earlier files have rope_theta at top level and optional rope_scaling.
	c.Rope = RopeConfig{Theta: 10000, Type: "default"}
	if raw.RopeTheta != nil {
		c.Rope.Theta = *raw.RopeTheta
	}
	for _, r := range []*rawRope{raw.RopeScaling, raw.RopeParameters} {
		if r == nil {
			continue
		}
		if r.RopeTheta != nil {
			c.Rope.Theta = *r.RopeTheta
		}
		switch {
		case r.RopeType != "":
			c.Rope.Type = r.RopeType
		case r.Type != "":
			c.Rope.Type = r.Type
		}
		if r.Factor != nil {
			c.Rope.Factor = *r.Factor
		}
		if r.LowFreqFactor != nil {
			c.Rope.LowFreqFactor = *r.LowFreqFactor
		}
		if r.HighFreqFactor != nil {
			c.Rope.HighFreqFactor = *r.HighFreqFactor
		}
		if r.OriginalMaxPositionEmbeddings != nil {
			c.Rope.OriginalMaxPositionEmbeddings = *r.OriginalMaxPositionEmbeddings
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks that the dimensions are consistent.
func (c *Config) Validate() error {
	positive := []struct {
		name string
		v    int
	}{
		{"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads},
		{"num_key_value_heads", c.NumKeyValueHeads},
		{"head_dim", c.HeadDim},
		{"vocab_size", c.VocabSize},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("config.json: %s must be positive, got %d", p.name, p.v)
		}
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("config.json: num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
			c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("config.json: head_dim must be even for rotary embeddings, got %d", c.HeadDim)
	}
	if c.HiddenAct != "silu" {
		return fmt.Errorf("config.json: hidden_act %q is not supported (only silu)", c.HiddenAct)
	}
	if !(c.RMSNormEps > 0) {
		return fmt.Errorf("config.json: rms_norm_eps must be positive, got %g", c.RMSNormEps)
	}
	if !(c.Rope.Theta > 0) || math.IsInf(c.Rope.Theta, 0) {
		return fmt.Errorf("config.json: rope_theta must be positive, got %g", c.Rope.Theta)
	}
	switch c.Rope.Type {
	case "default":
	case "llama3":
		if c.Rope.Factor <= 0 || c.Rope.LowFreqFactor <= 0 || c.Rope.HighFreqFactor <= c.Rope.LowFreqFactor ||
			c.Rope.OriginalMaxPositionEmbeddings <= 0 {
			return fmt.Errorf("config.json: llama3 rope scaling needs factor, low_freq_factor < high_freq_factor and original_max_position_embeddings")
		}
	default:
		return fmt.Errorf("config.json: rope_type %q is not supported (default, llama3)", c.Rope.Type)
	}
	return nil
}

// MarshalJSON writes the configuration as config.json, keeping the fields of
// the original file that the architecture does not interpret.
func (c Config) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	for k, v := range c.raw {
		out[k] = v
	}
	// The rope settings are written in the layout they came in; a config
	// built in code gets the classic layout that every transformers reads.
	if _, nested := c.raw["rope_parameters"]; !nested {
		out["rope_theta"] = c.Rope.Theta
		if c.Rope.Type == "llama3" {
			out["rope_scaling"] = map[string]any{
				"rope_type":                        "llama3",
				"factor":                           c.Rope.Factor,
				"low_freq_factor":                  c.Rope.LowFreqFactor,
				"high_freq_factor":                 c.Rope.HighFreqFactor,
				"original_max_position_embeddings": c.Rope.OriginalMaxPositionEmbeddings,
			}
		}
	}
	out["model_type"] = c.ModelType
	out["hidden_size"] = c.HiddenSize
	out["intermediate_size"] = c.IntermediateSize
	out["num_hidden_layers"] = c.NumHiddenLayers
	out["num_attention_heads"] = c.NumAttentionHeads
	out["num_key_value_heads"] = c.NumKeyValueHeads
	out["head_dim"] = c.HeadDim
	out["rms_norm_eps"] = c.RMSNormEps
	out["vocab_size"] = c.VocabSize
	out["tie_word_embeddings"] = c.TieWordEmbeddings
	out["max_position_embeddings"] = c.MaxPositionEmbeddings
	out["initializer_range"] = c.InitializerRange
	out["hidden_act"] = c.HiddenAct
	if _, ok := c.raw["torch_dtype"]; ok {
		out["torch_dtype"] = c.DType
	} else {
		out["dtype"] = c.DType
	}
	if c.ModelType != "qwen2" {
		out["attention_bias"] = c.AttentionBias
	}
	if _, ok := out["architectures"]; !ok {
		out["architectures"] = []string{architectures[c.ModelType].hfClass}
	}
	return json.MarshalIndent(out, "", "  ")
}

// writeFile writes config.json into dir.
func (c Config) writeFile(dir string) error {
	data, err := c.MarshalJSON()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o644)
}

func supportedModelTypes() []string {
	names := make([]string, 0, len(architectures))
	for n := range architectures {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
