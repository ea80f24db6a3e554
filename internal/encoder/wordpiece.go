package encoder

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// WordPiece is the BERT tokenizer as Hugging Face tokenizers runs it from a
// tokenizer.json: special tokens matched in the raw text, BertNormalizer,
// BertPreTokenizer, greedy longest-match WordPiece, then [CLS] … [SEP]
// around the pieces.
type WordPiece struct {
	vocab            map[string]int32
	unkID            int32
	continuingPrefix string
	// maxInputCharsPerWord: a longer word becomes a single [UNK] without
	// being split, as in BERT's reference implementation.
	maxInputCharsPerWord int

	normalizer bertNormalizer
	// added are the tokens matched before normalisation and
	// pre-tokenisation (the special tokens of a BERT tokenizer.json).
	added []addedToken

	// prefix and suffix surround a single sequence ([CLS] and [SEP]).
	prefix, suffix []int32
	padID          int32
}

type addedToken struct {
	content    string
	id         int32
	normalized bool // matched in the normalised text rather than the raw one
}

// bertNormalizer holds the BertNormalizer options of a tokenizer.json.
type bertNormalizer struct {
	cleanText          bool
	handleChineseChars bool
	stripAccents       bool
	lowercase          bool
	// stripAccentsSet: strip_accents was given; null follows lowercase.
	stripAccentsSet bool
}

// forceLowercase turns lowercasing on, as sentence-transformers'
// do_lower_case does through the tokenizer; strip_accents: null follows.
func (n *bertNormalizer) forceLowercase() {
	n.lowercase = true
	if !n.stripAccentsSet {
		n.stripAccents = true
	}
}

// tokenizerFile is the part of a Hugging Face tokenizer.json this package
// reads.
type tokenizerFile struct {
	AddedTokens []struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type               string `json:"type"`
		CleanText          bool   `json:"clean_text"`
		HandleChineseChars bool   `json:"handle_chinese_chars"`
		StripAccents       *bool  `json:"strip_accents"`
		Lowercase          bool   `json:"lowercase"`
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type string `json:"type"`
	} `json:"pre_tokenizer"`
	PostProcessor *struct {
		Type string `json:"type"`
		// TemplateProcessing
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int32 `json:"ids"`
		} `json:"special_tokens"`
		// BertProcessing: [token, id] pairs.
		Sep []any `json:"sep"`
		Cls []any `json:"cls"`
	} `json:"post_processor"`
	Padding *struct {
		PadID int32 `json:"pad_id"`
	} `json:"padding"`
	Model struct {
		Type                    string           `json:"type"`
		UnkToken                string           `json:"unk_token"`
		ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    int              `json:"max_input_chars_per_word"`
		Vocab                   map[string]int32 `json:"vocab"`
	} `json:"model"`
}

// LoadWordPiece reads a Hugging Face tokenizer.json and refuses, naming the
// field, one that is not a BERT-style WordPiece tokenizer.
func LoadWordPiece(path string) (*WordPiece, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f tokenizerFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w, err := newWordPiece(&f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

func newWordPiece(f *tokenizerFile) (*WordPiece, error) {
	if f.Model.Type != "WordPiece" {
		return nil, fmt.Errorf("model.type is %q; only WordPiece (BERT-style) tokenizers are supported", f.Model.Type)
	}
	if len(f.Model.Vocab) == 0 {
		return nil, fmt.Errorf("model.vocab is empty")
	}
	w := &WordPiece{
		vocab:                f.Model.Vocab,
		continuingPrefix:     "##",
		maxInputCharsPerWord: f.Model.MaxInputCharsPerWord,
	}
	if f.Model.ContinuingSubwordPrefix != nil {
		w.continuingPrefix = *f.Model.ContinuingSubwordPrefix
	}
	if w.maxInputCharsPerWord <= 0 {
		w.maxInputCharsPerWord = 100
	}
	unk, ok := f.Model.Vocab[f.Model.UnkToken]
	if !ok {
		return nil, fmt.Errorf("model.unk_token %q is not in model.vocab", f.Model.UnkToken)
	}
	w.unkID = unk

	n := f.Normalizer
	if n == nil || n.Type != "BertNormalizer" {
		return nil, fmt.Errorf("normalizer.type is %s; only BertNormalizer is supported", describeType(n == nil, func() string { return n.Type }))
	}
	w.normalizer = bertNormalizer{cleanText: n.CleanText, handleChineseChars: n.HandleChineseChars, lowercase: n.Lowercase}
	// strip_accents: null means "as lowercase", as in BERT's uncased models.
	w.normalizer.stripAccents = n.Lowercase
	if n.StripAccents != nil {
		w.normalizer.stripAccents, w.normalizer.stripAccentsSet = *n.StripAccents, true
	}
	if p := f.PreTokenizer; p == nil || p.Type != "BertPreTokenizer" {
		return nil, fmt.Errorf("pre_tokenizer.type is %s; only BertPreTokenizer is supported", describeType(p == nil, func() string { return p.Type }))
	}

	for i, a := range f.AddedTokens {
		if a.SingleWord || a.LStrip || a.RStrip {
			return nil, fmt.Errorf("added_tokens[%d] %q: single_word, lstrip and rstrip are not supported", i, a.Content)
		}
		if a.Content == "" {
			continue
		}
		w.added = append(w.added, addedToken{content: a.Content, id: a.ID, normalized: a.Normalized})
	}

	if err := w.readPostProcessor(f); err != nil {
		return nil, err
	}
	if f.Padding != nil {
		w.padID = f.Padding.PadID
	} else if id, ok := f.Model.Vocab["[PAD]"]; ok {
		w.padID = id
	}
	return w, nil
}

func describeType(missing bool, typ func() string) string {
	if missing {
		return "missing"
	}
	return fmt.Sprintf("%q", typ())
}

// readPostProcessor finds the special tokens around a single sequence:
// TemplateProcessing's "single" template or BertProcessing's cls/sep.
func (w *WordPiece) readPostProcessor(f *tokenizerFile) error {
	p := f.PostProcessor
	if p == nil {
		return fmt.Errorf("post_processor is missing; a BERT tokenizer adds [CLS] and [SEP]")
	}
	switch p.Type {
	case "TemplateProcessing":
		seenSequence := false
		for i, piece := range p.Single {
			switch {
			case piece.Sequence != nil:
				if seenSequence {
					return fmt.Errorf("post_processor.single[%d]: the sequence appears twice", i)
				}
				seenSequence = true
			case piece.SpecialToken != nil:
				special, ok := p.SpecialTokens[piece.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("post_processor.single[%d]: special token %q is not in post_processor.special_tokens", i, piece.SpecialToken.ID)
				}
				if seenSequence {
					w.suffix = append(w.suffix, special.IDs...)
				} else {
					w.prefix = append(w.prefix, special.IDs...)
				}
			default:
				return fmt.Errorf("post_processor.single[%d] is neither SpecialToken nor Sequence", i)
			}
		}
		if !seenSequence {
			return fmt.Errorf("post_processor.single has no Sequence")
		}
	case "BertProcessing":
		cls, err := tokenPair(p.Cls, "post_processor.cls")
		if err != nil {
			return err
		}
		sep, err := tokenPair(p.Sep, "post_processor.sep")
		if err != nil {
			return err
		}
		w.prefix, w.suffix = []int32{cls}, []int32{sep}
	default:
		return fmt.Errorf("post_processor.type is %q; only TemplateProcessing and BertProcessing are supported", p.Type)
	}
	return nil
}

// tokenPair reads BertProcessing's ["[CLS]", 101].
func tokenPair(v []any, field string) (int32, error) {
	if len(v) != 2 {
		return 0, fmt.Errorf("%s is not a [token, id] pair", field)
	}
	id, ok := v[1].(float64)
	if !ok {
		return 0, fmt.Errorf("%s is not a [token, id] pair", field)
	}
	return int32(id), nil
}

// VocabSize is the number of entries of the vocabulary.
func (w *WordPiece) VocabSize() int { return len(w.vocab) }

// PadID is the id that fills padded positions.
func (w *WordPiece) PadID() int32 { return w.padID }

// Encode returns the ids of text with the special tokens around them,
// untruncated.
func (w *WordPiece) Encode(text string) []int32 {
	return w.EncodeTruncated(text, 0)
}

// EncodeTruncated returns the ids of text with the special tokens around
// them, dropping pieces at the end so that the result has at most
// maxLength ids ([CLS] and [SEP] kept). maxLength <= 0 means no limit.
func (w *WordPiece) EncodeTruncated(text string, maxLength int) []int32 {
	pieces := w.pieces(text)
	if maxLength > 0 {
		room := max(maxLength-len(w.prefix)-len(w.suffix), 0)
		if len(pieces) > room {
			pieces = pieces[:room]
		}
	}
	ids := make([]int32, 0, len(w.prefix)+len(pieces)+len(w.suffix))
	ids = append(ids, w.prefix...)
	ids = append(ids, pieces...)
	return append(ids, w.suffix...)
}

// pieces tokenises text without the special tokens around it.
func (w *WordPiece) pieces(text string) []int32 {
	var ids []int32
	for _, seg := range w.splitAdded(text, false) {
		if seg.added {
			ids = append(ids, seg.id)
			continue
		}
		for _, normSeg := range w.splitAdded(w.normalizer.normalize(seg.text), true) {
			if normSeg.added {
				ids = append(ids, normSeg.id)
				continue
			}
			for _, word := range preTokenize(normSeg.text) {
				ids = w.appendWord(ids, word)
			}
		}
	}
	return ids
}

type segment struct {
	text  string
	added bool
	id    int32
}

// splitAdded cuts text around the added tokens whose normalized flag is
// normalized, taking at each position the longest token that starts there.
func (w *WordPiece) splitAdded(text string, normalized bool) []segment {
	var out []segment
	start := 0
	for i := 0; i < len(text); {
		best := -1
		for k, a := range w.added {
			if a.normalized == normalized && strings.HasPrefix(text[i:], a.content) &&
				(best < 0 || len(a.content) > len(w.added[best].content)) {
				best = k
			}
		}
		if best < 0 {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
			continue
		}
		if start < i {
			out = append(out, segment{text: text[start:i]})
		}
		out = append(out, segment{added: true, id: w.added[best].id})
		i += len(w.added[best].content)
		start = i
	}
	if start < len(text) {
		out = append(out, segment{text: text[start:]})
	}
	return out
}

// appendWord appends the WordPiece ids of one pre-tokenised word: the
// longest vocabulary entry at each position, continuations carrying the
// prefix; a word that cannot be covered, or is too long, is one [UNK].
func (w *WordPiece) appendWord(ids []int32, word string) []int32 {
	if utf8.RuneCountInString(word) > w.maxInputCharsPerWord {
		return append(ids, w.unkID)
	}
	mark := len(ids)
	for start := 0; start < len(word); {
		found := false
		for end := len(word); end > start; {
			candidate := word[start:end]
			if start > 0 {
				candidate = w.continuingPrefix + candidate
			}
			if id, ok := w.vocab[candidate]; ok {
				ids = append(ids, id)
				start, found = end, true
				break
			}
			// Shrink by one character, not one byte.
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if !found {
			return append(ids[:mark], w.unkID)
		}
	}
	return ids
}

// normalize applies BertNormalizer in its order: clean the text, space out
// CJK ideographs, strip accents, lowercase.
func (n bertNormalizer) normalize(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		if n.cleanText {
			if r == 0 || r == utf8.RuneError || isControl(r) {
				continue
			}
			if isWhitespace(r) {
				r = ' '
			}
		}
		if n.handleChineseChars && isChineseChar(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	text = b.String()
	if n.stripAccents {
		b.Reset()
		for _, r := range norm.NFD.String(text) {
			if !unicode.Is(unicode.Mn, r) {
				b.WriteRune(r)
			}
		}
		text = b.String()
	}
	if n.lowercase {
		b.Reset()
		for _, r := range text {
			if r == 'İ' {
				// The one unconditional multi-character lowercase mapping.
				b.WriteString("i\u0307")
				continue
			}
			b.WriteRune(unicode.ToLower(r))
		}
		text = b.String()
	}
	return text
}

// preTokenize is BertPreTokenizer: split on whitespace, and make every
// punctuation character a word of its own.
func preTokenize(text string) []string {
	var words []string
	start := -1
	for i, r := range text {
		switch {
		case unicode.IsSpace(r):
			if start >= 0 {
				words = append(words, text[start:i])
				start = -1
			}
		case isPunctuation(r):
			if start >= 0 {
				words = append(words, text[start:i])
				start = -1
			}
			words = append(words, string(r))
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		words = append(words, text[start:])
	}
	return words
}

// isWhitespace counts \t, \n and \r (control characters) as whitespace.
func isWhitespace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r)
}

// isControl is a control, format or private-use character, except the
// whitespace controls \t, \n and \r. Unassigned code points are kept (HF
// tokenizers keeps them, and they become [UNK]), so emoji newer than Go's
// Unicode tables behave the same.
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

// isPunctuation is ASCII punctuation (which includes symbols such as $ and
// +) or the Unicode punctuation categories.
func isPunctuation(r rune) bool {
	if r < 0x80 {
		return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126)
	}
	return unicode.IsPunct(r)
}

// isChineseChar is the CJK Unified Ideographs blocks BERT spaces out
// (Hangul, kana and CJK punctuation are not among them).
func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}
