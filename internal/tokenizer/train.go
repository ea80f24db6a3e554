package tokenizer

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/text/unicode/norm"

	"github.com/ssp-project/ssp/internal/outdir"
)

// TrainOptions configures TrainBPE.
type TrainOptions struct {
	// VocabSize is the total size: 256 byte tokens + learnt merges + added
	// tokens. Training stops early when no pair is frequent enough.
	VocabSize int
	// MinFrequency is how often a pair must occur to be merged (0 means 2).
	MinFrequency int
	// AddedTokens are never split (chat markers, protocol tags). They take
	// the ids after the BPE vocabulary, in this order, and training text is
	// cut at them so no merge crosses or enters them.
	AddedTokens []string
	// SpecialCount marks the first SpecialCount AddedTokens "special": true,
	// which DecodeSkipSpecial drops.
	SpecialCount int
	// EOSToken and PadToken go to tokenizer_config.json; each must be empty
	// or one of AddedTokens.
	EOSToken, PadToken string
	// ChatTemplate goes to tokenizer_config.json.
	ChatTemplate string
	// SplitPiece, if set, cuts each pre-tokenised piece of the training
	// text further before counting (nil or a single piece: unchanged), so
	// that no merge is learnt across the cuts; for example made-up names cut
	// into their syllables. DropCrossingMerges then removes merges learnt
	// from other words that would still cross the cuts.
	SplitPiece func(piece string) []string `json:"-"`
	// InitialMerges are learnt first, in this order, before any counted
	// pair (raw text, e.g. {"k", "o"}); each side must be a byte or the
	// result of an earlier initial merge. Forcing every syllable of made-up
	// names first means any word is cut into those syllables before later
	// merges apply, so later merges cannot split a syllable.
	InitialMerges [][2]string `json:"-"`
}

// BPEModel is a trained byte-level BPE vocabulary, written by WriteDir as a
// Qwen2-style tokenizer.json that Load and Hugging Face tokenizers read alike.
type BPEModel struct {
	tokens []string    // id → byte-level token; 0..255 are the bytes in order
	merges [][2]string // in the order learnt, i.e. by rank
	added  []addedToken
	opts   TrainOptions
}

// VocabSize is the number of ids: BPE vocabulary plus added tokens.
func (m *BPEModel) VocabSize() int { return len(m.tokens) + len(m.added) }

// NumMerges is the number of merges learnt.
func (m *BPEModel) NumMerges() int { return len(m.merges) }

// trainPattern is the pre-tokenizer split the trained tokenizer declares.
const trainPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

func (o *TrainOptions) validate() error {
	if o.MinFrequency < 0 {
		return fmt.Errorf("tokenizer: MinFrequency %d is negative", o.MinFrequency)
	}
	if o.MinFrequency == 0 {
		o.MinFrequency = 2
	}
	if minSize := 256 + len(o.AddedTokens); o.VocabSize < minSize {
		return fmt.Errorf("tokenizer: VocabSize %d is below the %d ids of 256 byte tokens and %d added tokens",
			o.VocabSize, minSize, len(o.AddedTokens))
	}
	if o.SpecialCount < 0 || o.SpecialCount > len(o.AddedTokens) {
		return fmt.Errorf("tokenizer: SpecialCount %d is outside 0..%d (the number of AddedTokens)", o.SpecialCount, len(o.AddedTokens))
	}
	seen := map[string]bool{}
	for _, a := range o.AddedTokens {
		if a == "" {
			return errors.New("tokenizer: an added token is empty")
		}
		if seen[a] {
			return fmt.Errorf("tokenizer: added token %q is listed twice", a)
		}
		seen[a] = true
	}
	for _, f := range []struct{ name, tok string }{{"EOSToken", o.EOSToken}, {"PadToken", o.PadToken}} {
		if f.tok != "" && !seen[f.tok] {
			return fmt.Errorf("tokenizer: %s %q is not among AddedTokens", f.name, f.tok)
		}
	}
	return nil
}

// TrainBPE learns byte-level BPE merges from texts the way Hugging Face's
// BpeTrainer does with the full byte alphabet: texts are cut at added
// tokens, NFC-normalised and split with the Qwen2 pattern; the resulting
// words are counted once, then the most frequent adjacent pair is merged
// repeatedly, with pair counts updated only in the words that change. Ties
// go to the pair whose token ids are smallest in the trainer's numbering
// (bytes in the order of their printable runes, then merges in order), as
// in the reference, so both learn the same merges from the same words.
func TrainBPE(ctx context.Context, texts iter.Seq[string], opts TrainOptions) (*BPEModel, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	wordCounts, err := countWords(ctx, texts, opts.AddedTokens, opts.SplitPiece)
	if err != nil {
		return nil, err
	}
	if len(wordCounts) == 0 {
		return nil, errors.New("tokenizer: no training text (empty, or only added tokens)")
	}
	m := &BPEModel{opts: opts}
	for b := range 256 {
		m.tokens = append(m.tokens, string(byteToRune[b]))
	}
	if err := m.learnMerges(ctx, wordCounts); err != nil {
		return nil, err
	}
	for i, a := range opts.AddedTokens {
		m.added = append(m.added, addedToken{ID: int32(len(m.tokens) + i), Content: a, Special: i < opts.SpecialCount})
	}
	return m, nil
}

// countWords pre-tokenises texts on all CPUs and counts the pieces (raw bytes).
func countWords(ctx context.Context, texts iter.Seq[string], addedTokens []string, splitPiece func(string) []string) (map[string]int64, error) {
	splitter := &Tokenizer{}
	for _, a := range addedTokens {
		splitter.added = append(splitter.added, addedToken{Content: a})
	}
	sort.SliceStable(splitter.added, func(a, b int) bool { return len(splitter.added[a].Content) > len(splitter.added[b].Content) })
	pattern := knownPatterns[trainPattern]

	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan string, 4*workers)
	counts := make([]map[string]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		counts[w] = map[string]int64{}
		wg.Go(func() {
			local := counts[w]
			for text := range jobs {
				for len(text) > 0 {
					pos, tok := splitter.nextAdded(text)
					if pos > 0 {
						for _, piece := range pattern.split(norm.NFC.String(text[:pos])) {
							if splitPiece == nil {
								local[piece]++
								continue
							}
							parts := splitPiece(piece)
							if len(parts) == 0 {
								parts = []string{piece}
							}
							for _, part := range parts {
								local[part]++
							}
						}
					}
					if tok == nil {
						break
					}
					text = text[pos+len(tok.Content):]
				}
			}
		})
	}
	var err error
	n := 0
	for text := range texts {
		if n++; n%1024 == 0 {
			if err = ctx.Err(); err != nil {
				break
			}
		}
		jobs <- text
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	total := counts[0]
	for _, c := range counts[1:] {
		for w, n := range c {
			total[w] += n
		}
	}
	return total, nil
}

type symbolPair struct{ a, b int32 }

// pairEntry is a queued candidate merge. count is the pair's count when it
// was queued and may be stale; words are the words it was seen in then.
type pairEntry struct {
	pair  symbolPair
	count int64
	words []int32
	seq   int64 // push order, so equal entries pop deterministically
}

type pairQueue struct {
	entries []*pairEntry
	order   func(id int32) int32 // the trainer's numbering of a token id
	pushes  int64
}

func (q *pairQueue) Len() int { return len(q.entries) }
func (q *pairQueue) Less(i, j int) bool {
	x, y := q.entries[i], q.entries[j]
	if x.count != y.count {
		return x.count > y.count
	}
	if x.pair != y.pair {
		xa, ya := q.order(x.pair.a), q.order(y.pair.a)
		if xa != ya {
			return xa < ya
		}
		return q.order(x.pair.b) < q.order(y.pair.b)
	}
	return x.seq < y.seq
}
func (q *pairQueue) Swap(i, j int) { q.entries[i], q.entries[j] = q.entries[j], q.entries[i] }
func (q *pairQueue) Push(x any) {
	e := x.(*pairEntry)
	e.seq = q.pushes
	q.pushes++
	q.entries = append(q.entries, e)
}
func (q *pairQueue) Pop() any {
	e := q.entries[len(q.entries)-1]
	q.entries = q.entries[:len(q.entries)-1]
	return e
}

// byteOrder numbers the 256 bytes by their printable rune, as the reference
// trainer numbers its sorted alphabet.
var byteOrder = func() [256]int32 {
	bytesByRune := make([]int, 256)
	for b := range bytesByRune {
		bytesByRune[b] = b
	}
	sort.Slice(bytesByRune, func(i, j int) bool { return byteToRune[bytesByRune[i]] < byteToRune[bytesByRune[j]] })
	var order [256]int32
	for rank, b := range bytesByRune {
		order[b] = int32(rank)
	}
	return order
}()

func (m *BPEModel) learnMerges(ctx context.Context, wordCounts map[string]int64) error {
	// Sorted words make every index, and so every run, identical.
	keys := make([]string, 0, len(wordCounts))
	for w := range wordCounts {
		keys = append(keys, w)
	}
	slices.Sort(keys)
	words := make([][]int32, len(keys))
	counts := make([]int64, len(keys))
	for i, w := range keys {
		counts[i] = wordCounts[w]
		words[i] = make([]int32, len(w))
		for k := 0; k < len(w); k++ {
			words[i][k] = int32(w[k])
		}
	}

	pairCounts := map[symbolPair]int64{}
	where := map[symbolPair][]int32{}
	for i, w := range words {
		for k := 0; k+1 < len(w); k++ {
			p := symbolPair{w[k], w[k+1]}
			pairCounts[p] += counts[i]
			if ws := where[p]; len(ws) == 0 || ws[len(ws)-1] != int32(i) {
				where[p] = append(ws, int32(i))
			}
		}
	}
	q := &pairQueue{order: func(id int32) int32 {
		if id < 256 {
			return byteOrder[id]
		}
		return id
	}}
	pushAll := func() {
		pairs := make([]symbolPair, 0, len(where))
		for p := range where {
			pairs = append(pairs, p)
		}
		slices.SortFunc(pairs, func(x, y symbolPair) int {
			if c := cmp.Compare(x.a, y.a); c != 0 {
				return c
			}
			return cmp.Compare(x.b, y.b)
		})
		for _, p := range pairs {
			if c := pairCounts[p]; c > 0 {
				heap.Push(q, &pairEntry{pair: p, count: c, words: where[p]})
			}
		}
		clear(where)
	}
	pushAll()

	tokenID := map[string]int32{}
	for id, tok := range m.tokens {
		tokenID[tok] = int32(id)
	}
	// A learnt token equal to an added token would give the string two ids.
	reserved := map[string]bool{}
	for _, a := range m.opts.AddedTokens {
		reserved[byteLevel(a)] = true
	}
	merged := map[symbolPair]bool{}
	limit := m.opts.VocabSize - len(m.opts.AddedTokens)
	for _, im := range m.opts.InitialMerges {
		var pair symbolPair
		for k, side := range im {
			id, ok := tokenID[byteLevel(side)]
			if !ok {
				return fmt.Errorf("tokenizer: initial merge %q: %q is neither a byte nor made by an earlier initial merge", im, side)
			}
			if k == 0 {
				pair.a = id
			} else {
				pair.b = id
			}
		}
		newToken := m.tokens[pair.a] + m.tokens[pair.b]
		if merged[pair] || reserved[newToken] || len(m.tokens) >= limit {
			continue
		}
		merged[pair] = true
		newID, ok := tokenID[newToken]
		if !ok {
			newID = int32(len(m.tokens))
			m.tokens = append(m.tokens, newToken)
			tokenID[newToken] = newID
		}
		m.merges = append(m.merges, [2]string{m.tokens[pair.a], m.tokens[pair.b]})
		for wi := range words {
			if !slices.ContainsFunc(words[wi][1:], func(id int32) bool { return id == pair.b }) {
				continue
			}
			// Only the counts: the queue is rebuilt from the words below.
			words[wi] = mergeWord(words[wi], pair, newID, func(p symbolPair, change int64) {
				pairCounts[p] += change * counts[wi]
			})
		}
	}
	if len(m.opts.InitialMerges) > 0 {
		// Pair counts changed under the queue: rebuild it from the words.
		q.entries = q.entries[:0]
		clear(where)
		for i, w := range words {
			for k := 0; k+1 < len(w); k++ {
				p := symbolPair{w[k], w[k+1]}
				if ws := where[p]; len(ws) == 0 || ws[len(ws)-1] != int32(i) {
					where[p] = append(ws, int32(i))
				}
			}
		}
		pushAll()
	}
	for len(m.tokens) < limit && q.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		top := heap.Pop(q).(*pairEntry)
		if c := pairCounts[top.pair]; top.count != c {
			top.count = c
			heap.Push(q, top)
			continue
		}
		if top.count < 1 || top.count < int64(m.opts.MinFrequency) {
			break
		}
		newToken := m.tokens[top.pair.a] + m.tokens[top.pair.b]
		if reserved[newToken] {
			continue
		}
		newID, ok := tokenID[newToken]
		if !ok {
			newID = int32(len(m.tokens))
			m.tokens = append(m.tokens, newToken)
			tokenID[newToken] = newID
		}
		// The same pair can come up again when a token is learnt twice by
		// different merges; the first rank is the one every loader keeps.
		if !merged[top.pair] {
			merged[top.pair] = true
			m.merges = append(m.merges, [2]string{m.tokens[top.pair.a], m.tokens[top.pair.b]})
		}
		for _, wi := range top.words {
			words[wi] = mergeWord(words[wi], top.pair, newID, func(p symbolPair, change int64) {
				pairCounts[p] += change * counts[wi]
				if change > 0 {
					if ws := where[p]; len(ws) == 0 || ws[len(ws)-1] != wi {
						where[p] = append(ws, wi)
					}
				}
			})
		}
		pushAll()
	}
	return nil
}

// DropCrossingMerges removes the merges that, when a word of words is
// encoded, would join two of its parts into one token, together with the
// merges built on their results; it returns how many were removed. Each word
// is given as its parts (raw text, e.g. {" Ba", "ko", "ti"}); a part may
// still become several tokens, but no token spans two parts. Removing a
// merge can change how another word is cut, so it repeats until no word
// crosses.
func (m *BPEModel) DropCrossingMerges(words [][]string) int {
	type word struct {
		symbols []string // byte-level symbols, one per byte
		cuts    []bool   // cuts[i]: a part starts at byte i
	}
	ws := make([]word, 0, len(words))
	for _, parts := range words {
		var w word
		for _, part := range parts {
			for i := 0; i < len(part); i++ {
				w.symbols = append(w.symbols, string(byteToRune[part[i]]))
				w.cuts = append(w.cuts, i == 0 && len(w.cuts) > 0)
			}
		}
		ws = append(ws, w)
	}
	dropped := 0
	for {
		ranks := make(map[[2]string]int, len(m.merges))
		for r, mg := range m.merges {
			if _, ok := ranks[mg]; !ok {
				ranks[mg] = r
			}
		}
		bad := map[[2]string]bool{}
		for _, w := range ws {
			// BPE on the word, lowest rank first, tracking each symbol's
			// starting byte so a merge across a cut is seen.
			syms := slices.Clone(w.symbols)
			start := make([]int, len(syms))
			for i := range start {
				start[i] = i
			}
			for len(syms) > 1 {
				bestRank, at := -1, -1
				for i := 0; i+1 < len(syms); i++ {
					if r, ok := ranks[[2]string{syms[i], syms[i+1]}]; ok && (bestRank < 0 || r < bestRank) {
						bestRank, at = r, i
					}
				}
				if at < 0 {
					break
				}
				if w.cuts[start[at+1]] {
					bad[m.merges[bestRank]] = true
					break
				}
				syms[at] += syms[at+1]
				syms = append(syms[:at+1], syms[at+2:]...)
				start = append(start[:at+1], start[at+2:]...)
			}
		}
		if len(bad) == 0 {
			return dropped
		}
		dropped += m.dropMerges(bad)
	}
}

// dropMerges removes the given merges and every later merge that uses a
// token no remaining merge makes, then renumbers the tokens. It returns the
// number of merges removed.
func (m *BPEModel) dropMerges(bad map[[2]string]bool) int {
	have := map[string]bool{}
	tokens := m.tokens[:256:256]
	for _, t := range tokens {
		have[t] = true
	}
	var kept [][2]string
	for _, mg := range m.merges {
		if bad[mg] || !have[mg[0]] || !have[mg[1]] {
			continue
		}
		kept = append(kept, mg)
		if t := mg[0] + mg[1]; !have[t] {
			have[t] = true
			tokens = append(tokens, t)
		}
	}
	n := len(m.merges) - len(kept)
	m.merges, m.tokens = kept, tokens
	for i := range m.added {
		m.added[i].ID = int32(len(m.tokens) + i)
	}
	return n
}

// mergeWord replaces each non-overlapping occurrence of p in w, left to
// right, with id, reporting every pair that disappears (-1) or appears (+1).
func mergeWord(w []int32, p symbolPair, id int32, change func(symbolPair, int64)) []int32 {
	out := w[:0]
	for i := 0; i < len(w); {
		if i+1 < len(w) && w[i] == p.a && w[i+1] == p.b {
			if len(out) > 0 {
				prev := out[len(out)-1]
				change(symbolPair{prev, p.a}, -1)
				change(symbolPair{prev, id}, 1)
			}
			change(p, -1)
			if i+2 < len(w) {
				next := w[i+2]
				change(symbolPair{p.b, next}, -1)
				change(symbolPair{id, next}, 1)
			}
			out = append(out, id)
			i += 2
			continue
		}
		out = append(out, w[i])
		i++
	}
	return out
}

// WriteDir writes tokenizer.json and tokenizer_config.json into dir (made
// if missing), each atomically.
func (m *BPEModel) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tj, err := m.tokenizerJSON()
	if err != nil {
		return err
	}
	cfg, err := m.configJSON()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "tokenizer.json"), tj); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "tokenizer_config.json"), cfg)
}

type jsonAddedToken struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// orderedVocab is the vocab object with its keys in id order.
type orderedVocab []string

func (v orderedVocab) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for id, tok := range v {
		if id > 0 {
			b.WriteByte(',')
		}
		k, err := marshalNoEscape(tok)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(id))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (m *BPEModel) tokenizerJSON() ([]byte, error) {
	byteLevel := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
	added := make([]jsonAddedToken, len(m.added))
	for i, a := range m.added {
		added[i] = jsonAddedToken{ID: a.ID, Content: a.Content, Special: a.Special}
	}
	merges := make([]string, len(m.merges))
	for i, p := range m.merges {
		merges[i] = p[0] + " " + p[1] // byte-level tokens never contain a space
	}
	type model struct {
		Type                    string       `json:"type"`
		Dropout                 *float64     `json:"dropout"`
		UnkToken                *string      `json:"unk_token"`
		ContinuingSubwordPrefix string       `json:"continuing_subword_prefix"`
		EndOfWordSuffix         string       `json:"end_of_word_suffix"`
		FuseUnk                 bool         `json:"fuse_unk"`
		ByteFallback            bool         `json:"byte_fallback"`
		IgnoreMerges            bool         `json:"ignore_merges"`
		Vocab                   orderedVocab `json:"vocab"`
		Merges                  []string     `json:"merges"`
	}
	doc := struct {
		Version       string           `json:"version"`
		Truncation    any              `json:"truncation"`
		Padding       any              `json:"padding"`
		AddedTokens   []jsonAddedToken `json:"added_tokens"`
		Normalizer    any              `json:"normalizer"`
		PreTokenizer  any              `json:"pre_tokenizer"`
		PostProcessor any              `json:"post_processor"`
		Decoder       any              `json:"decoder"`
		Model         model            `json:"model"`
	}{
		Version:     "1.0",
		AddedTokens: added,
		Normalizer:  map[string]any{"type": "NFC"},
		PreTokenizer: map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": trainPattern}, "behavior": "Isolated", "invert": false},
			byteLevel,
		}},
		PostProcessor: byteLevel,
		Decoder:       byteLevel,
		Model:         model{Type: "BPE", Vocab: m.tokens, Merges: merges},
	}
	return marshalIndentNoEscape(doc)
}

func (m *BPEModel) configJSON() ([]byte, error) {
	// transformers builds an AddedToken from each entry, which takes no id.
	type configAddedToken struct {
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	decoder := map[string]configAddedToken{}
	for _, a := range m.added {
		decoder[strconv.Itoa(int(a.ID))] = configAddedToken{Content: a.Content, Special: a.Special}
	}
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	special := []string{}
	for _, a := range m.added {
		if a.Special {
			special = append(special, a.Content)
		}
	}
	cfg := map[string]any{
		"add_bos_token":                false,
		"add_prefix_space":             false,
		"added_tokens_decoder":         decoder,
		"additional_special_tokens":    special,
		"bos_token":                    nil,
		"clean_up_tokenization_spaces": false,
		"eos_token":                    orNull(m.opts.EOSToken),
		"errors":                       "replace",
		"pad_token":                    orNull(m.opts.PadToken),
		"split_special_tokens":         false,
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"unk_token":                    nil,
	}
	if m.opts.ChatTemplate != "" {
		cfg["chat_template"] = m.opts.ChatTemplate
	}
	return marshalIndentNoEscape(cfg)
}

// marshalNoEscape is json.Marshal without HTML escaping, so tokens such as
// <|im_end|> read as written.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func marshalIndentNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so readers never see a partial file.
func writeFileAtomic(path string, data []byte) error {
	if err := outdir.WriteFile(path, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	return nil
}
