package builtin

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// byteTokenizerSpec is a byte-level BPE without merges: one token per byte,
// plus the chat markers and the agent protocol's tags as single added
// tokens, so that a tiny model sees every tag as one symbol. It is a
// standard HF tokenizer.json that the tokenizers library loads too.
type byteTokenizerSpec struct {
	vocab     map[string]int
	added     []string
	vocabSize int
	eosID     int
	padID     int
}

var protocolTokens = []string{
	"<|endoftext|>", "<|im_start|>", "<|im_end|>",
	"<think>", "</think>", "<search>", "</search>", "<information>", "</information>",
	"<answer>", "</answer>", "<question>", "</question>",
}

func byteTokenizer() byteTokenizerSpec {
	t := byteTokenizerSpec{vocab: map[string]int{}}
	n := 0
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = rune(256 + n)
			n++
		}
		t.vocab[string(r)] = b
	}
	t.added = protocolTokens
	t.vocabSize = 256 + len(protocolTokens)
	t.eosID = 256 + 2 // <|im_end|>
	t.padID = 256     // <|endoftext|>
	return t
}

const chatMLTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

func (t byteTokenizerSpec) write(dir string) error {
	var added []map[string]any
	for i, content := range t.added {
		added = append(added, map[string]any{
			"id": 256 + i, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
			"normalized": false, "special": i < 3,
		})
	}
	tj := map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   added,
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": nil,
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": t.vocab, "merges": []string{},
		},
	}
	tc := map[string]any{
		"tokenizer_class": "PreTrainedTokenizerFast",
		"eos_token":       "<|im_end|>",
		"pad_token":       "<|endoftext|>",
		"bos_token":       nil,
		"chat_template":   chatMLTemplate,
	}
	for name, v := range map[string]any{"tokenizer.json": tj, "tokenizer_config.json": tc} {
		data, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
