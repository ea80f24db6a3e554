package gguf

import (
	"fmt"
	"strings"
)

// Token types of tokenizer.ggml.token_type (llama_token_type) that the
// conversion distinguishes; unknown (2), unused (5) and byte (6) tokens are
// ordinary vocabulary entries in a byte-level BPE.
const (
	tokenNormal      = 1
	tokenControl     = 3
	tokenUserDefined = 4
)

// Split patterns of the byte-level BPE pre-tokenizers, as written in the
// tokenizer.json files of the model families that use them.
const (
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// hfTokenizer is the converted tokenizer: tokenizer.json and
// tokenizer_config.json contents plus the vocabulary for checks.
type hfTokenizer struct {
	vocab  map[string]int
	json   map[string]any
	config map[string]any
}

func byteLevel(useRegex bool) map[string]any {
	return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": useRegex}
}

// preTokenizer maps tokenizer.ggml.pre to the normalizer and pre-tokenizer
// of the Hugging Face tokenizer the GGUF was converted from.
func preTokenizer(pre string) (normalizer, pretok map[string]any, err error) {
	split := func(pattern string) map[string]any {
		return map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false}
	}
	switch pre {
	case "gpt-2", "gpt2", "default":
		return nil, byteLevel(true), nil
	case "smollm":
		return nil, map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Digits", "individual_digits": true},
			byteLevel(true),
		}}, nil
	case "llama-bpe", "llama3":
		return nil, map[string]any{"type": "Sequence", "pretokenizers": []any{split(patternLlama3), byteLevel(false)}}, nil
	case "qwen2", "deepseek-r1-qwen":
		return map[string]any{"type": "NFC"},
			map[string]any{"type": "Sequence", "pretokenizers": []any{split(patternQwen2), byteLevel(false)}}, nil
	}
	return nil, nil, fmt.Errorf("tokenizer.ggml.pre %q is not supported (supported: gpt-2, default, smollm, llama-bpe, qwen2)", pre)
}

// buildTokenizer converts the tokenizer.ggml.* metadata of a byte-level BPE
// ("gpt2") vocabulary into Hugging Face tokenizer files.
func buildTokenizer(f *File, maxLen int) (*hfTokenizer, error) {
	model, _ := f.String("tokenizer.ggml.model")
	if model != "gpt2" {
		return nil, fmt.Errorf("tokenizer.ggml.model %q is not supported (only byte-level BPE, \"gpt2\")", model)
	}
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) == 0 {
		return nil, fmt.Errorf("tokenizer.ggml.tokens is missing or not a string array")
	}
	merges, ok := f.Strings("tokenizer.ggml.merges")
	if !ok {
		return nil, fmt.Errorf("tokenizer.ggml.merges is missing or not a string array")
	}
	var types []int64
	if _, present := f.Metadata["tokenizer.ggml.token_type"]; present {
		if types, ok = f.Ints("tokenizer.ggml.token_type"); !ok || len(types) != len(tokens) {
			return nil, fmt.Errorf("tokenizer.ggml.token_type must be an integer array of %d entries", len(tokens))
		}
	}
	pre, _ := f.String("tokenizer.ggml.pre")
	if pre == "" {
		pre = "default"
	}
	normalizer, pretok, err := preTokenizer(pre)
	if err != nil {
		return nil, err
	}

	vocab := make(map[string]int, len(tokens))
	var added []any
	decoder := map[string]any{}
	for id, tok := range tokens {
		typ := int64(tokenNormal)
		if types != nil {
			typ = types[id]
		}
		if _, dup := vocab[tok]; !dup {
			vocab[tok] = id
		} else if typ != tokenControl && typ != tokenUserDefined {
			continue // an unreachable duplicate; the first id keeps the string
		}
		if typ == tokenControl || typ == tokenUserDefined {
			a := map[string]any{
				"id": id, "content": tok, "single_word": false, "lstrip": false, "rstrip": false,
				"normalized": typ == tokenUserDefined, "special": typ == tokenControl,
			}
			added = append(added, a)
			decoder[fmt.Sprint(id)] = map[string]any{
				"content": tok, "single_word": false, "lstrip": false, "rstrip": false,
				"normalized": typ == tokenUserDefined, "special": typ == tokenControl,
			}
		}
	}
	pairs := make([][2]string, len(merges))
	for i, m := range merges {
		a, b, ok := strings.Cut(m, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer.ggml.merges[%d] %q is not two space-separated symbols", i, m)
		}
		pairs[i] = [2]string{a, b}
	}

	special := func(key string) (string, int, bool) {
		v, ok := f.Uint(key)
		if !ok || v >= uint64(len(tokens)) {
			return "", 0, false
		}
		return tokens[v], int(v), true
	}
	addBOS, _ := f.Metadata["tokenizer.ggml.add_bos_token"].(bool)
	addEOS, _ := f.Metadata["tokenizer.ggml.add_eos_token"].(bool)

	var post map[string]any
	bos, bosID, hasBOS := special("tokenizer.ggml.bos_token_id")
	if addBOS && hasBOS {
		post = map[string]any{
			"type": "TemplateProcessing",
			"single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
			},
			"pair": []any{
				map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 1}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}},
			},
			"special_tokens": map[string]any{bos: map[string]any{"id": bos, "ids": []int{bosID}, "tokens": []string{bos}}},
		}
	} else {
		post = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}
	}
	if added == nil {
		added = []any{}
	}
	tj := map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   added,
		"normalizer":     normalizer,
		"pre_tokenizer":  pretok,
		"post_processor": post,
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": pre == "llama-bpe" || pre == "llama3",
			"vocab": vocab, "merges": pairs,
		},
	}
	cfg := map[string]any{
		"add_bos_token":                addBOS,
		"add_eos_token":                addEOS,
		"added_tokens_decoder":         decoder,
		"clean_up_tokenization_spaces": false,
		"model_max_length":             maxLen,
		"tokenizer_class":              "PreTrainedTokenizerFast",
	}
	for field, key := range map[string]string{
		"bos_token": "tokenizer.ggml.bos_token_id", "eos_token": "tokenizer.ggml.eos_token_id",
		"pad_token": "tokenizer.ggml.padding_token_id", "unk_token": "tokenizer.ggml.unknown_token_id",
	} {
		if s, _, ok := special(key); ok {
			cfg[field] = s
		} else {
			cfg[field] = nil
		}
	}
	if tmpl, ok := f.String("tokenizer.chat_template"); ok {
		cfg["chat_template"] = tmpl
	}
	return &hfTokenizer{vocab: vocab, json: tj, config: cfg}, nil
}
