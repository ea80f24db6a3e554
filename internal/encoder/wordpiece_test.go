package encoder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyVocab is a handmade BERT vocabulary for the edge cases below.
var tinyVocab = []string{
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
	"un", "##aff", "##able", "hello", "world", ",", "!", "$", "5", "cafe", "café",
	"中", "文", "a", "##b", "ab", "x", "##x", ".", "i", "##̇",
}

// writeTokenizer writes a tokenizer.json in the Hugging Face layout with
// tinyVocab, edited by edit, and returns its path.
func writeTokenizer(t testing.TB, edit func(map[string]any)) string {
	t.Helper()
	vocab := map[string]int{}
	for i, tok := range tinyVocab {
		vocab[tok] = i
	}
	var added []map[string]any
	for i, tok := range tinyVocab[:5] {
		added = append(added, map[string]any{"id": i, "content": tok, "special": true,
			"single_word": false, "lstrip": false, "rstrip": false, "normalized": false})
	}
	doc := map[string]any{
		"version":      "1.0",
		"added_tokens": added,
		"normalizer": map[string]any{"type": "BertNormalizer", "clean_text": true,
			"handle_chinese_chars": true, "strip_accents": nil, "lowercase": true},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{
			"type": "TemplateProcessing",
			"single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}},
			},
			"special_tokens": map[string]any{
				"[CLS]": map[string]any{"id": "[CLS]", "ids": []int{2}, "tokens": []string{"[CLS]"}},
				"[SEP]": map[string]any{"id": "[SEP]", "ids": []int{3}, "tokens": []string{"[SEP]"}},
			},
		},
		"model": map[string]any{"type": "WordPiece", "unk_token": "[UNK]",
			"continuing_subword_prefix": "##", "max_input_chars_per_word": 12, "vocab": vocab},
	}
	if edit != nil {
		edit(doc)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadTiny(t *testing.T, edit func(map[string]any)) *WordPiece {
	t.Helper()
	w, err := LoadWordPiece(writeTokenizer(t, edit))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// tokens spells ids with tinyVocab, for readable failures.
func tokens(ids []int32) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tinyVocab[id]
	}
	return strings.Join(out, " ")
}

func TestWordPieceEdgeCases(t *testing.T) {
	setNormalizer := func(key string, value any) func(map[string]any) {
		return func(doc map[string]any) { doc["normalizer"].(map[string]any)[key] = value }
	}
	cases := []struct {
		name string
		edit func(map[string]any)
		text string
		want string
	}{
		{"continuation pieces", nil, "unaffable", "[CLS] un ##aff ##able [SEP]"},
		{"longest match first", nil, "ab abx", "[CLS] ab ab ##x [SEP]"},
		{"uncoverable word is one [UNK]", nil, "hello unaffz", "[CLS] hello [UNK] [SEP]"},
		{"word over max_input_chars_per_word", nil, "x" + strings.Repeat("x", 12), "[CLS] [UNK] [SEP]"},
		{"word at max_input_chars_per_word", nil, strings.Repeat("x", 12), "[CLS] x" + strings.Repeat(" ##x", 11) + " [SEP]"},
		{"accents stripped when lowercasing", nil, "Café CAFÉ", "[CLS] cafe cafe [SEP]"},
		{"decomposed accents stripped", nil, "cafe\u0301", "[CLS] cafe [SEP]"},
		{"accents kept when strip_accents is false", setNormalizer("strip_accents", false), "Café", "[CLS] café [SEP]"},
		{"case kept without lowercase", setNormalizer("lowercase", false), "Hello hello", "[CLS] [UNK] hello [SEP]"},
		{"dotted capital I lowercases to two characters", func(doc map[string]any) {
			setNormalizer("strip_accents", false)(doc)
		}, "İ", "[CLS] i ##̇ [SEP]"},
		{"Chinese characters split", nil, "中文", "[CLS] 中 文 [SEP]"},
		{"Chinese characters joined without handle_chinese_chars", setNormalizer("handle_chinese_chars", false), "中文", "[CLS] [UNK] [SEP]"},
		{"punctuation split", nil, "hello,world!", "[CLS] hello , world ! [SEP]"},
		{"ASCII symbols are punctuation", nil, "$5", "[CLS] $ 5 [SEP]"},
		{"unassigned code points kept", nil, "a\u0378", "[CLS] [UNK] [SEP]"},
		{"control characters dropped", nil, "hel\x00lo\u200b wor\x01ld", "[CLS] hello world [SEP]"},
		{"whitespace of all kinds separates", nil, "hello\tworld\u00a0hello\u3000world", "[CLS] hello world hello world [SEP]"},
		{"special tokens matched in raw text", nil, "hello[SEP]world [MASK]", "[CLS] hello [SEP] world [MASK] [SEP]"},
		{"special tokens are case-sensitive", nil, "[sep]", "[CLS] [UNK] [UNK] [UNK] [SEP]"},
		{"empty text", nil, "", "[CLS] [SEP]"},
		{"only spaces", nil, "  \n ", "[CLS] [SEP]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := loadTiny(t, c.edit)
			if got := tokens(w.Encode(c.text)); got != c.want {
				t.Errorf("Encode(%q) = %s, want %s", c.text, got, c.want)
			}
		})
	}
}

func TestWordPieceTruncation(t *testing.T) {
	w := loadTiny(t, nil)
	cases := []struct {
		maxLength int
		want      string
	}{
		{0, "[CLS] un ##aff ##able hello [SEP]"},
		{6, "[CLS] un ##aff ##able hello [SEP]"},
		{5, "[CLS] un ##aff ##able [SEP]"},
		{3, "[CLS] un [SEP]"},
		{2, "[CLS] [SEP]"},
	}
	for _, c := range cases {
		if got := tokens(w.EncodeTruncated("unaffable hello", c.maxLength)); got != c.want {
			t.Errorf("EncodeTruncated(max %d) = %s, want %s", c.maxLength, got, c.want)
		}
	}
}

func TestWordPieceBertProcessing(t *testing.T) {
	w := loadTiny(t, func(doc map[string]any) {
		doc["post_processor"] = map[string]any{"type": "BertProcessing", "sep": []any{"[SEP]", 3}, "cls": []any{"[CLS]", 2}}
	})
	if got, want := tokens(w.Encode("hello")), "[CLS] hello [SEP]"; got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
}

func TestWordPieceRefusesOtherTokenizers(t *testing.T) {
	cases := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"BPE model", func(doc map[string]any) { doc["model"].(map[string]any)["type"] = "BPE" }, `model.type is "BPE"`},
		{"other normalizer", func(doc map[string]any) { doc["normalizer"] = map[string]any{"type": "NFC"} }, `normalizer.type is "NFC"`},
		{"no normalizer", func(doc map[string]any) { doc["normalizer"] = nil }, "normalizer.type is missing"},
		{"byte-level pre-tokenizer", func(doc map[string]any) { doc["pre_tokenizer"] = map[string]any{"type": "ByteLevel"} }, `pre_tokenizer.type is "ByteLevel"`},
		{"RoBERTa post-processor", func(doc map[string]any) { doc["post_processor"] = map[string]any{"type": "RobertaProcessing"} }, `post_processor.type is "RobertaProcessing"`},
		{"no post-processor", func(doc map[string]any) { doc["post_processor"] = nil }, "post_processor is missing"},
		{"unknown unk token", func(doc map[string]any) { doc["model"].(map[string]any)["unk_token"] = "<unk>" }, `model.unk_token "<unk>"`},
		{"lstrip added token", func(doc map[string]any) {
			doc["added_tokens"].([]map[string]any)[4]["lstrip"] = true
		}, `added_tokens[4] "[MASK]"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTokenizer(t, c.edit)
			_, err := LoadWordPiece(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadWordPiece error = %v, want one naming %s and %q", err, path, c.want)
			}
		})
	}
}

// referenceFile is what scripts/gen_encoder_reference.py writes per model.
type referenceFile struct {
	Model         string                 `json:"model"`
	MaxSeqLength  int                    `json:"max_seq_length"`
	Prompts       map[string]string      `json:"prompts"`
	QueryPrefix   string                 `json:"query_prefix"`
	PassagePrefix string                 `json:"passage_prefix"`
	TokenIDs      [][]int32              `json:"token_ids"`
	ModelInputIDs [][]int32              `json:"model_input_ids"`
	Embeddings    map[string][][]float64 `json:"embeddings"`
}

func loadReference(t testing.TB, model string) ([]string, *referenceFile) {
	t.Helper()
	dir := assetPath(t, "encoder-reference")
	var texts struct {
		Texts []string `json:"texts"`
	}
	readJSON(t, filepath.Join(dir, "texts.json"), &texts)
	var ref referenceFile
	readJSON(t, filepath.Join(dir, model+".json"), &ref)
	if len(ref.TokenIDs) != len(texts.Texts) {
		t.Fatalf("%s: %d token id rows for %d texts", model, len(ref.TokenIDs), len(texts.Texts))
	}
	return texts.Texts, &ref
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestWordPieceMatchesHuggingFace(t *testing.T) {
	dir := encoderDir(t, "all-MiniLM-L6-v2")
	texts, ref := loadReference(t, "all-MiniLM-L6-v2")
	w, err := LoadWordPiece(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	mismatches := 0
	for i, text := range texts {
		if got := w.Encode(text); !slices.Equal(got, ref.TokenIDs[i]) {
			mismatches++
			t.Errorf("text %d %q:\n got  %v\n want %v", i, text, got, ref.TokenIDs[i])
		}
		if got := w.EncodeTruncated(text, ref.MaxSeqLength); !slices.Equal(got, ref.ModelInputIDs[i]) {
			mismatches++
			t.Errorf("text %d %q truncated to %d:\n got  %v\n want %v", i, text, ref.MaxSeqLength, got, ref.ModelInputIDs[i])
		}
		if mismatches > 10 {
			t.Fatal("too many mismatches")
		}
	}
}

func FuzzWordPiece(f *testing.F) {
	for _, s := range []string{"", "unaffable", "unaffable hello world, unaffable", "Café 中文 $5!", "[SEP][CLS]", "\x00\xff\xfe", "İ\u0301"} {
		f.Add(s)
	}
	path := writeTokenizer(f, nil)
	w, err := LoadWordPiece(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids := w.EncodeTruncated(text, 8)
		if len(ids) < 2 || len(ids) > 8 || ids[0] != 2 || ids[len(ids)-1] != 3 {
			t.Fatalf("EncodeTruncated(%q, 8) = %v", text, ids)
		}
		for _, id := range ids {
			if id < 0 || int(id) >= len(tinyVocab) {
				t.Fatalf("id %d outside the vocabulary", id)
			}
		}
	})
}
