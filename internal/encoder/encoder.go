// Package encoder turns texts into sentence vectors with BERT-family
// encoders (all-MiniLM-L6-v2, BGE, E5, …) read from Hugging Face model
// directories, running on GoMLX. Tokenisation matches Hugging Face
// tokenizers id for id; pooling, normalisation, prompts and the maximum
// length follow the sentence-transformers files of the directory
// (modules.json, 1_Pooling/config.json, sentence_bert_config.json,
// config_sentence_transformers.json), so the vectors match what
// sentence-transformers computes for the same directory.
package encoder

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ssp-project/ssp/internal/model"
)

// Pooling modes.
const (
	PoolingMean = "mean" // the mean of the token vectors, padding excluded
	PoolingCLS  = "cls"  // the vector of the [CLS] token
)

// DefaultBatchSize is the number of texts per forward pass when Options
// leaves BatchSize at 0.
const DefaultBatchSize = 32

// Options override what the model directory prescribes; the zero value
// takes everything from the directory.
type Options struct {
	// Backend is the GoMLX backend: "go" (pure Go, CPU), "xla:cpu",
	// "xla:cuda"; "" means $GOMLX_BACKEND, else "go".
	Backend string
	// BatchSize is the number of texts per forward pass (0: 32).
	BatchSize int
	// MaxLength caps the tokens per text, [CLS] and [SEP] included (0: the
	// directory's max_seq_length, else the model's position limit).
	MaxLength int
	// Pooling is "mean" or "cls" ("": the directory's Pooling module, else
	// mean).
	Pooling string
	// Normalize makes vectors unit length (nil: whether the directory has a
	// Normalize module).
	Normalize *bool
	// QueryPrefix and PassagePrefix are prepended to queries and passages
	// (nil: the directory's "query" and "document"/"passage"/"corpus"
	// prompts, else its default prompt, else none).
	QueryPrefix, PassagePrefix *string
}

// Info describes an opened encoder; it is what an index records about the
// encoder that built it.
type Info struct {
	Name          string `json:"name"`
	ModelType     string `json:"model_type"`
	Dim           int    `json:"dim"`
	Layers        int    `json:"layers"`
	Heads         int    `json:"heads"`
	VocabSize     int    `json:"vocab_size"`
	MaxLength     int    `json:"max_length"`
	Pooling       string `json:"pooling"`
	Normalize     bool   `json:"normalize"`
	QueryPrefix   string `json:"query_prefix"`
	PassagePrefix string `json:"passage_prefix"`
	// Config says where pooling and normalisation came from:
	// "sentence-transformers" (the directory's modules.json) or "defaults"
	// (none: mean pooling, no normalisation), with "+options" when Options
	// overrode any of them.
	Config string `json:"config"`
}

// Encoder is an opened sentence encoder. Its methods may be called from
// several goroutines; forward passes run one at a time.
type Encoder struct {
	info      Info
	tokenizer *WordPiece
	batchSize int
	maxLength int
	// lengthLimit is the longest padded length the position embeddings allow.
	lengthLimit int

	mu       sync.Mutex
	programs *programs
}

// Open loads the encoder in dir, a Hugging Face BERT directory, with or
// without sentence-transformers files.
func Open(dir string, opts Options) (*Encoder, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	cfg, err := readBERTConfig(dir)
	if err != nil {
		return nil, err
	}
	tokenizer, err := LoadWordPiece(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("encoder %s: %w", dir, err)
	}
	st, err := readSentenceTransformers(dir)
	if err != nil {
		return nil, err
	}
	if st.lowercase {
		tokenizer.normalizer.forceLowercase()
	}
	if tokenizer.VocabSize() > cfg.VocabSize {
		return nil, fmt.Errorf("encoder %s: tokenizer.json has %d entries, config.json vocab_size is %d", dir, tokenizer.VocabSize(), cfg.VocabSize)
	}

	info := Info{
		Name:      filepath.Base(filepath.Clean(dir)),
		ModelType: cfg.ModelType,
		Dim:       cfg.HiddenSize,
		Layers:    cfg.NumHiddenLayers,
		Heads:     cfg.NumAttentionHeads,
		VocabSize: cfg.VocabSize,
		MaxLength: min(cmp.Or(st.maxLength, cfg.MaxPositionEmbeddings), cfg.MaxPositionEmbeddings),
		Pooling:   cmp.Or(st.pooling, PoolingMean),
		Normalize: st.normalize,
		Config:    "defaults",
	}
	info.QueryPrefix, info.PassagePrefix = st.prefixes()
	if st.found {
		info.Config = "sentence-transformers"
	}
	overridden := false
	if opts.MaxLength != 0 {
		if opts.MaxLength < 2 || opts.MaxLength > cfg.MaxPositionEmbeddings {
			return nil, fmt.Errorf("encoder %s: MaxLength %d outside [2, %d] (max_position_embeddings)", dir, opts.MaxLength, cfg.MaxPositionEmbeddings)
		}
		info.MaxLength, overridden = opts.MaxLength, true
	}
	if opts.Pooling != "" {
		info.Pooling, overridden = opts.Pooling, true
	} else if st.poolingErr != nil {
		return nil, st.poolingErr
	}
	if info.Pooling != PoolingMean && info.Pooling != PoolingCLS {
		return nil, fmt.Errorf("encoder %s: pooling %q is not supported (mean, cls)", dir, info.Pooling)
	}
	if opts.Normalize != nil {
		info.Normalize, overridden = *opts.Normalize, true
	}
	if opts.QueryPrefix != nil {
		info.QueryPrefix, overridden = *opts.QueryPrefix, true
	}
	if opts.PassagePrefix != nil {
		info.PassagePrefix, overridden = *opts.PassagePrefix, true
	}
	if overridden {
		info.Config += "+options"
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("encoder %s: BatchSize %d is negative", dir, opts.BatchSize)
	}

	backend, err := model.Backend(opts.Backend)
	if err != nil {
		return nil, err
	}
	weights, err := loadBERT(dir, cfg)
	if err != nil {
		return nil, err
	}
	return &Encoder{
		info:        info,
		tokenizer:   tokenizer,
		batchSize:   cmp.Or(opts.BatchSize, DefaultBatchSize),
		maxLength:   info.MaxLength,
		lengthLimit: cfg.MaxPositionEmbeddings,
		programs:    newPrograms(backend, weights, info.Pooling, info.Normalize),
	}, nil
}

// IsEncoderDir returns nil when dir looks like an encoder Open can load
// (a BERT config.json, a WordPiece tokenizer.json, safetensors weights),
// and the reason otherwise. It does not read the weights.
func IsEncoderDir(dir string) error {
	if err := checkDir(dir); err != nil {
		return err
	}
	if _, err := readBERTConfig(dir); err != nil {
		return err
	}
	if _, err := LoadWordPiece(filepath.Join(dir, "tokenizer.json")); err != nil {
		return fmt.Errorf("encoder %s: %w", dir, err)
	}
	for _, name := range []string{"model.safetensors", "model.safetensors.index.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("encoder %s: no model.safetensors (nor model.safetensors.index.json)", dir)
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("encoder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("encoder %s: not a directory", dir)
	}
	return nil
}

// Dim is the length of the vectors.
func (e *Encoder) Dim() int { return e.info.Dim }

// Name is the base name of the model directory.
func (e *Encoder) Name() string { return e.info.Name }

// Info describes the encoder and the choices it runs with.
func (e *Encoder) Info() Info { return e.info }

// EncodeQueries encodes search queries, with the query prefix.
func (e *Encoder) EncodeQueries(ctx context.Context, texts []string) ([][]float32, error) {
	return e.encode(ctx, texts, e.info.QueryPrefix)
}

// EncodePassages encodes documents to be searched, with the passage prefix.
func (e *Encoder) EncodePassages(ctx context.Context, texts []string) ([][]float32, error) {
	return e.encode(ctx, texts, e.info.PassagePrefix)
}

// Encode encodes texts as they are, without any prefix.
func (e *Encoder) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	return e.encode(ctx, texts, "")
}

// encode tokenises the texts, sorts them by length so that each batch pads
// little, and runs the batches at bucketed shapes so that a few compiled
// programs serve every batch. The context is checked between batches.
func (e *Encoder) encode(ctx context.Context, texts []string, prefix string) ([][]float32, error) {
	ids := make([][]int32, len(texts))
	for i, text := range texts {
		ids[i] = e.tokenizer.EncodeTruncated(prefix+text, e.maxLength)
	}
	order := make([]int, len(texts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(ids[b]), len(ids[a])) })

	out := make([][]float32, len(texts))
	dim := e.info.Dim
	for lo := 0; lo < len(order); lo += e.batchSize {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		part := order[lo:min(lo+e.batchSize, len(order))]
		rows := min(bucket(len(part), 1), e.batchSize)
		length := min(bucket(len(ids[part[0]]), 16), e.lengthLimit)
		batchIDs := make([]int32, rows*length)
		mask := make([]float32, rows*length)
		for r := range rows {
			if r >= len(part) {
				// A filler row: one visible [PAD] keeps its softmax well defined.
				batchIDs[r*length] = e.tokenizer.PadID()
				mask[r*length] = 1
				continue
			}
			for t, id := range ids[part[r]] {
				batchIDs[r*length+t] = id
				mask[r*length+t] = 1
			}
			for t := len(ids[part[r]]); t < length; t++ {
				batchIDs[r*length+t] = e.tokenizer.PadID()
			}
		}
		e.mu.Lock()
		vectors, err := e.programs.run(batchIDs, mask, rows, length)
		e.mu.Unlock()
		if err != nil {
			return nil, err
		}
		for r, i := range part {
			out[i] = slices.Clone(vectors[r*dim : (r+1)*dim])
		}
	}
	return out, nil
}

// bucket rounds n up to a power of two (at least minimum), so that texts of
// similar lengths share one compiled shape.
func bucket(n, minimum int) int {
	b := minimum
	for b < n {
		b *= 2
	}
	return b
}

// sentenceTransformers is what the sentence-transformers files of a
// directory prescribe.
type sentenceTransformers struct {
	found      bool // modules.json exists
	pooling    string
	poolingErr error // an unsupported pooling, reported unless overridden
	normalize  bool
	maxLength  int
	lowercase  bool
	prompts    map[string]string
	// defaultPrompt is the name of the prompt used when a side has none.
	defaultPrompt string
}

// prefixes picks the query and passage prompts the way sentence-transformers'
// encode_query and encode_document do.
func (s *sentenceTransformers) prefixes() (query, passage string) {
	fallback := s.prompts[s.defaultPrompt]
	query = fallback
	if p, ok := s.prompts["query"]; ok {
		query = p
	}
	passage = fallback
	for _, name := range []string{"document", "passage", "corpus"} {
		if p, ok := s.prompts[name]; ok {
			passage = p
			break
		}
	}
	return query, passage
}

// readSentenceTransformers reads the sentence-transformers files of dir;
// a directory without modules.json gets the defaults.
func readSentenceTransformers(dir string) (*sentenceTransformers, error) {
	st := &sentenceTransformers{}
	var bertConfig struct {
		MaxSeqLength int  `json:"max_seq_length"`
		DoLowerCase  bool `json:"do_lower_case"`
	}
	if ok, err := readOptionalJSON(filepath.Join(dir, "sentence_bert_config.json"), &bertConfig); err != nil {
		return nil, err
	} else if ok {
		st.maxLength, st.lowercase = bertConfig.MaxSeqLength, bertConfig.DoLowerCase
	}
	if st.maxLength == 0 {
		// sentence-transformers 6 keeps the limit in the tokenizer config.
		var tokConfig struct {
			ModelMaxLength float64 `json:"model_max_length"`
		}
		if ok, err := readOptionalJSON(filepath.Join(dir, "tokenizer_config.json"), &tokConfig); err != nil {
			return nil, err
		} else if ok && tokConfig.ModelMaxLength > 0 && tokConfig.ModelMaxLength < 1e6 {
			st.maxLength = int(tokConfig.ModelMaxLength)
		}
	}
	var stConfig struct {
		Prompts           map[string]string `json:"prompts"`
		DefaultPromptName *string           `json:"default_prompt_name"`
	}
	if _, err := readOptionalJSON(filepath.Join(dir, "config_sentence_transformers.json"), &stConfig); err != nil {
		return nil, err
	}
	st.prompts = stConfig.Prompts
	if n := stConfig.DefaultPromptName; n != nil && *n != "" {
		if _, ok := st.prompts[*n]; !ok {
			return nil, fmt.Errorf("%s: default_prompt_name %q is not among the prompts", filepath.Join(dir, "config_sentence_transformers.json"), *n)
		}
		st.defaultPrompt = *n
	}

	modulesPath := filepath.Join(dir, "modules.json")
	var modules []struct {
		Path string `json:"path"`
		Type string `json:"type"`
	}
	ok, err := readOptionalJSON(modulesPath, &modules)
	if err != nil || !ok {
		return st, err
	}
	st.found = true
	for i, m := range modules {
		kind := m.Type[strings.LastIndex(m.Type, ".")+1:]
		switch {
		case i == 0 && kind == "Transformer":
		case i == 1 && kind == "Pooling":
			st.pooling, st.poolingErr = readPooling(filepath.Join(dir, m.Path, "config.json"))
			if st.poolingErr != nil && st.pooling == "" {
				return nil, st.poolingErr
			}
		case i == 2 && kind == "Normalize":
			st.normalize = true
		default:
			return nil, fmt.Errorf("%s: module %d (%s) is not supported: only Transformer, Pooling and an optional Normalize, in that order", modulesPath, i, m.Type)
		}
	}
	if st.pooling == "" {
		return nil, fmt.Errorf("%s: no Pooling module after the Transformer", modulesPath)
	}
	return st, nil
}

// readPooling reads a Pooling module config: the pooling_mode of
// sentence-transformers 5 and later, or the older pooling_mode_* flags. An
// unsupported mode comes back named, with an error, so that an override can
// still replace it; a malformed config is an error without a mode.
func readPooling(path string) (string, error) {
	var raw map[string]any
	ok, err := readOptionalJSON(path, &raw)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%s: missing (the Pooling module's config)", path)
	}
	if include, ok := raw["include_prompt"].(bool); ok && !include {
		return "", fmt.Errorf("%s: include_prompt false (pooling without the prompt tokens) is not supported", path)
	}
	var modes []string
	switch m := raw["pooling_mode"].(type) {
	case string:
		modes = []string{m}
	case []any:
		for _, v := range m {
			modes = append(modes, fmt.Sprint(v))
		}
	case nil:
		flags := []struct{ key, mode string }{
			{"pooling_mode_cls_token", "cls"},
			{"pooling_mode_mean_tokens", "mean"},
			{"pooling_mode_max_tokens", "max"},
			{"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"},
			{"pooling_mode_weightedmean_tokens", "weightedmean"},
			{"pooling_mode_lasttoken", "lasttoken"},
		}
		for _, f := range flags {
			if on, _ := raw[f.key].(bool); on {
				modes = append(modes, f.mode)
			}
		}
	default:
		return "", fmt.Errorf("%s: pooling_mode is neither a name nor a list", path)
	}
	switch {
	case len(modes) == 0:
		return "", fmt.Errorf("%s: no pooling mode set", path)
	case len(modes) > 1:
		return strings.Join(modes, "+"), fmt.Errorf("%s: pooling modes %q concatenated are not supported (one of mean, cls)", path, modes)
	case modes[0] != PoolingMean && modes[0] != PoolingCLS:
		return modes[0], fmt.Errorf("%s: pooling mode %q is not supported (mean, cls)", path, modes[0])
	}
	return modes[0], nil
}

// readOptionalJSON decodes path into v, reporting false when the file does
// not exist.
func readOptionalJSON(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}
