// Package tokenizer re-implements Hugging Face tokenizers for byte-level BPE
// models (GPT-2, Qwen2/Qwen3, Llama 3, SmolLM and the world tokenizers ssp
// trains), loaded from tokenizer.json and tokenizer_config.json, with the
// same ids as the reference library.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer encodes text to token ids and back.
type Tokenizer struct {
	vocab    map[string]int32
	idToTok  []string
	ranks    map[[2]string]int
	pattern  splitPattern
	digits   digitSplit // a Digits pre-tokenizer before the byte-level split
	nfc      bool
	ignoreMg bool

	added      []addedToken // longest content first, for matching
	addedByID  map[int32]addedToken
	eosIDs     []int32
	bosID      int32
	padID      int32
	template   string
	cacheMu    sync.Mutex
	wordCache  map[string][]int32
	sourcePath string
}

type addedToken struct {
	ID      int32  `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
	LStrip  bool   `json:"lstrip"`
	RStrip  bool   `json:"rstrip"`
}

// Message is one chat turn for ApplyChatTemplate.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Load reads dir/tokenizer.json and, when present, dir/tokenizer_config.json
// and dir/generation_config.json.
func Load(dir string) (*Tokenizer, error) {
	t, err := LoadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	if err := t.loadConfig(dir); err != nil {
		return nil, err
	}
	return t, nil
}

type jsonTokenizer struct {
	AddedTokens  []addedToken    `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Decoder      json.RawMessage `json:"decoder"`
	Model        struct {
		Type         string            `json:"type"`
		Vocab        map[string]int32  `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		IgnoreMerges bool              `json:"ignore_merges"`
		ByteFallback bool              `json:"byte_fallback"`
	} `json:"model"`
}

type component struct {
	Type          string            `json:"type"`
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Pattern       struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior         string `json:"behavior"`
	IndividualDigits bool   `json:"individual_digits"`
	Invert           bool   `json:"invert"`
	UseRegex         *bool  `json:"use_regex"`
	AddPrefixSpace   bool   `json:"add_prefix_space"`
}

// LoadFile reads one tokenizer.json.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j jsonTokenizer
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: field %s: %s", path, field, fmt.Sprintf(format, args...))
	}
	if j.Model.Type != "BPE" {
		return nil, bad("model.type", "%q is not supported (only byte-level BPE)", j.Model.Type)
	}
	if j.Model.ByteFallback {
		return nil, bad("model.byte_fallback", "byte-fallback BPE is not supported (only byte-level BPE)")
	}
	t := &Tokenizer{vocab: j.Model.Vocab, ranks: map[[2]string]int{}, ignoreMg: j.Model.IgnoreMerges,
		addedByID: map[int32]addedToken{}, wordCache: map[string][]int32{}, bosID: -1, padID: -1, sourcePath: path}
	for i, raw := range j.Model.Merges {
		var pair [2]string
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return nil, bad(fmt.Sprintf("model.merges[%d]", i), "%q is not two symbols", s)
			}
			pair = [2]string{a, b}
		} else if err := json.Unmarshal(raw, &pair); err != nil {
			return nil, bad(fmt.Sprintf("model.merges[%d]", i), "want \"a b\" or [\"a\",\"b\"]")
		}
		if _, dup := t.ranks[pair]; !dup {
			t.ranks[pair] = i
		}
	}
	if err := t.readNormalizer(j.Normalizer); err != nil {
		return nil, bad("normalizer", "%v", err)
	}
	if err := t.readPreTokenizer(j.PreTokenizer); err != nil {
		return nil, bad("pre_tokenizer", "%v", err)
	}
	if len(j.Decoder) > 0 && string(j.Decoder) != "null" {
		var d component
		if err := json.Unmarshal(j.Decoder, &d); err != nil || d.Type != "ByteLevel" {
			return nil, bad("decoder", "only the ByteLevel decoder is supported, got %s", j.Decoder)
		}
	}
	maxID := int32(-1)
	for _, id := range t.vocab {
		maxID = max(maxID, id)
	}
	for _, a := range j.AddedTokens {
		t.addedByID[a.ID] = a
		maxID = max(maxID, a.ID)
		t.added = append(t.added, a)
	}
	sort.SliceStable(t.added, func(a, b int) bool { return len(t.added[a].Content) > len(t.added[b].Content) })
	t.idToTok = make([]string, maxID+1)
	for tok, id := range t.vocab {
		if id < 0 {
			return nil, bad("model.vocab", "negative id for %q", tok)
		}
		t.idToTok[id] = tok
	}
	for _, a := range j.AddedTokens {
		t.idToTok[a.ID] = a.Content
	}
	return t, nil
}

func (t *Tokenizer) readNormalizer(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	switch c.Type {
	case "NFC":
		t.nfc = true
	case "Sequence":
		for _, n := range c.Normalizers {
			if err := t.readNormalizer(n); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("normalizer %q is not supported", c.Type)
	}
	return nil
}

func (t *Tokenizer) readPreTokenizer(raw json.RawMessage) error {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		if c.AddPrefixSpace {
			return errors.New("ByteLevel add_prefix_space=true is not supported")
		}
		if c.UseRegex == nil || *c.UseRegex {
			t.pattern = gpt2Pattern
		}
		return nil
	case "Split":
		if c.Pattern.Regex == nil || c.Behavior != "Isolated" || c.Invert {
			return fmt.Errorf("only Split with a Regex pattern, behavior Isolated and invert false is supported")
		}
		p, err := lookupPattern(*c.Pattern.Regex)
		if err != nil {
			return err
		}
		t.pattern = p
		return nil
	case "Sequence":
		if len(c.Pretokenizers) != 2 {
			return fmt.Errorf("only Sequence[Split, ByteLevel] is supported")
		}
		var first, bl component
		if err := json.Unmarshal(c.Pretokenizers[0], &first); err != nil {
			return err
		}
		if err := json.Unmarshal(c.Pretokenizers[1], &bl); err != nil || bl.Type != "ByteLevel" || bl.AddPrefixSpace {
			return fmt.Errorf("only Sequence[Split or Digits, ByteLevel(add_prefix_space=false)] is supported")
		}
		useRegex := bl.UseRegex == nil || *bl.UseRegex
		switch {
		case first.Type == "Digits" && useRegex: // SmolLM: digits apart, then GPT-2 split
			t.digits = digitsGrouped
			if first.IndividualDigits {
				t.digits = digitsIndividual
			}
			t.pattern = gpt2Pattern
			return nil
		case first.Type == "Split" && !useRegex:
			return t.readPreTokenizer(c.Pretokenizers[0])
		}
		return fmt.Errorf("only Sequence[Split, ByteLevel(use_regex=false)] or Sequence[Digits, ByteLevel(use_regex=true)] is supported")
	}
	return fmt.Errorf("pre-tokenizer %q is not supported", c.Type)
}

// loadConfig reads special token names and the chat template.
func (t *Tokenizer) loadConfig(dir string) error {
	path := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return t.loadGenerationConfig(dir)
	} else if err != nil {
		return err
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tokenField := func(name string) (int32, bool, error) {
		raw, ok := cfg[name]
		if !ok || string(raw) == "null" {
			return -1, false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			var obj struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil {
				return -1, false, fmt.Errorf("%s: field %s: want a string or {\"content\": ...}", path, name)
			}
			s = obj.Content
		}
		id, ok := t.TokenID(s)
		if !ok {
			return -1, false, fmt.Errorf("%s: field %s: token %q is not in the vocabulary", path, name, s)
		}
		return id, true, nil
	}
	if id, ok, err := tokenField("eos_token"); err != nil {
		return err
	} else if ok {
		t.eosIDs = []int32{id}
	}
	if id, ok, err := tokenField("bos_token"); err != nil {
		return err
	} else if ok {
		t.bosID = id
	}
	if id, ok, err := tokenField("pad_token"); err != nil {
		return err
	} else if ok {
		t.padID = id
	}
	if raw, ok := cfg["chat_template"]; ok {
		if err := json.Unmarshal(raw, &t.template); err != nil {
			return fmt.Errorf("%s: field chat_template: only a single template string is supported", path)
		}
	}
	return t.loadGenerationConfig(dir)
}

// loadGenerationConfig adds generation_config.json's eos_token_id (an int or
// a list): models such as Qwen3 stop on several ids.
func (t *Tokenizer) loadGenerationConfig(dir string) error {
	path := filepath.Join(dir, "generation_config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var cfg struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(cfg.EOS) == 0 || string(cfg.EOS) == "null" {
		return nil
	}
	var ids []int32
	var one int32
	if err := json.Unmarshal(cfg.EOS, &one); err == nil {
		ids = []int32{one}
	} else if err := json.Unmarshal(cfg.EOS, &ids); err != nil {
		return fmt.Errorf("%s: field eos_token_id: want an int or a list of ints", path)
	}
	for _, id := range ids {
		if !containsID(t.eosIDs, id) {
			t.eosIDs = append(t.eosIDs, id)
		}
	}
	return nil
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// VocabSize is one more than the largest token id.
func (t *Tokenizer) VocabSize() int { return len(t.idToTok) }

// TokenID looks up a token string (vocabulary or added token).
func (t *Tokenizer) TokenID(tok string) (int32, bool) {
	for _, a := range t.added {
		if a.Content == tok {
			return a.ID, true
		}
	}
	id, ok := t.vocab[tok]
	return id, ok
}

// EOSTokenIDs are the ids that end generation.
func (t *Tokenizer) EOSTokenIDs() []int32 { return append([]int32(nil), t.eosIDs...) }

// BOSTokenID is the beginning-of-sequence id, if the tokenizer has one.
func (t *Tokenizer) BOSTokenID() (int32, bool) { return t.bosID, t.bosID >= 0 }

// PadTokenID is the padding id, if the tokenizer has one.
func (t *Tokenizer) PadTokenID() (int32, bool) { return t.padID, t.padID >= 0 }

// Encode tokenises text like HF's encode(text, add_special_tokens=False):
// added tokens in the text become single ids, the rest is normalised,
// pre-tokenised and byte-level BPE encoded.
func (t *Tokenizer) Encode(text string) []int32 {
	var ids []int32
	for len(text) > 0 {
		pos, tok := t.nextAdded(text)
		segment := text[:pos]
		if tok != nil && tok.LStrip {
			segment = strings.TrimRight(segment, " \t\n\r\v\f")
		}
		ids = t.encodeSegment(segment, ids)
		if tok == nil {
			break
		}
		ids = append(ids, tok.ID)
		text = text[pos+len(tok.Content):]
		if tok.RStrip {
			text = strings.TrimLeft(text, " \t\n\r\v\f")
		}
	}
	return ids
}

// nextAdded finds the leftmost added token in text, the longest at that position.
func (t *Tokenizer) nextAdded(text string) (int, *addedToken) {
	best, bestPos := -1, len(text)
	for i := range t.added {
		p := strings.Index(text[:min(len(text), bestPos+len(t.added[i].Content))], t.added[i].Content)
		if p >= 0 && (p < bestPos || (p == bestPos && best >= 0 && len(t.added[i].Content) > len(t.added[best].Content))) {
			best, bestPos = i, p
		}
	}
	if best < 0 {
		return len(text), nil
	}
	return bestPos, &t.added[best]
}

func (t *Tokenizer) encodeSegment(s string, ids []int32) []int32 {
	if s == "" {
		return ids
	}
	if t.nfc {
		s = norm.NFC.String(s)
	}
	for _, part := range t.digits.split(s) {
		pieces := []string{part}
		if t.pattern.name != "" {
			pieces = t.pattern.split(part)
		}
		for _, p := range pieces {
			ids = append(ids, t.encodeWord(p)...)
		}
	}
	return ids
}

// encodeWord byte-level maps one pre-tokenised piece and applies BPE merges
// lowest rank first, leftmost on ties, as the reference does.
func (t *Tokenizer) encodeWord(piece string) []int32 {
	t.cacheMu.Lock()
	if ids, ok := t.wordCache[piece]; ok {
		t.cacheMu.Unlock()
		return ids
	}
	t.cacheMu.Unlock()
	word := byteLevel(piece)
	var ids []int32
	if id, ok := t.vocab[word]; ok && t.ignoreMg {
		ids = []int32{id}
	} else {
		var syms []string
		for _, r := range word {
			syms = append(syms, string(r))
		}
		for len(syms) > 1 {
			bestRank, bestAt := -1, -1
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := t.ranks[[2]string{syms[i], syms[i+1]}]; ok && (bestRank < 0 || r < bestRank) {
					bestRank, bestAt = r, i
				}
			}
			if bestAt < 0 {
				break
			}
			syms[bestAt] += syms[bestAt+1]
			syms = append(syms[:bestAt+1], syms[bestAt+2:]...)
		}
		for _, s := range syms {
			if id, ok := t.vocab[s]; ok {
				ids = append(ids, id)
			}
			// A symbol missing from the vocabulary is dropped, as HF's BPE
			// without unk_token does; byte-level vocabularies hold every byte.
		}
	}
	if len(piece) < 256 {
		t.cacheMu.Lock()
		if len(t.wordCache) > 1<<20 {
			clear(t.wordCache)
		}
		t.wordCache[piece] = ids
		t.cacheMu.Unlock()
	}
	return ids
}

// Decode turns ids back into text like HF's decode(ids,
// skip_special_tokens=False); ids outside the vocabulary are skipped.
func (t *Tokenizer) Decode(ids []int32) string { return t.decode(ids, false) }

// DecodeSkipSpecial is Decode without special tokens.
func (t *Tokenizer) DecodeSkipSpecial(ids []int32) string { return t.decode(ids, true) }

func (t *Tokenizer) decode(ids []int32, skipSpecial bool) string {
	var buf []byte
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.idToTok) {
			continue
		}
		if a, ok := t.addedByID[id]; ok && a.Special && skipSpecial {
			continue
		}
		tok := t.idToTok[id]
		start := len(buf)
		ok := true
		for _, r := range tok {
			b, found := runeToByte[r]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok { // a token outside the byte alphabet is emitted as its UTF-8 text
			buf = append(buf[:start], tok...)
		}
	}
	return lossyUTF8(buf)
}

// lossyUTF8 replaces each maximal invalid subsequence with U+FFFD, as Rust's
// String::from_utf8_lossy (and so HF decode) does.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			sb.Write(b[i : i+n])
			i += n
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += invalidPrefixLen(b[i:])
	}
	return sb.String()
}

// invalidPrefixLen is the length of the maximal prefix of b that could start
// a valid UTF-8 sequence but does not complete one (at least 1).
func invalidPrefixLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 1; k <= need && k < len(b); k++ {
		if b[k] < lo || b[k] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}

// ByteAlphabet returns the 256 single-rune tokens of GPT-2's byte-level
// alphabet (bytes_to_unicode), indexed by byte.
func ByteAlphabet() []string {
	out := make([]string, 256)
	for b, r := range byteToRune {
		out[b] = string(r)
	}
	return out
}

// byteToRune is GPT-2's reversible map from bytes to printable runes.
// byteLevel maps raw text to the byte-level alphabet, one rune per byte.
func byteLevel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()
