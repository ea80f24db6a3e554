package tokenizer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/ssp-project/ssp/internal/fixtures"
)

// trainingText is a small corpus with repeated words, unicode, code, numbers
// and chat markers, so that merges of every kind are learnt.
var trainingText = []string{
	"The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.",
	"<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n",
	"<|im_start|>user\nWho wrote the novel?<|im_end|>\n<|im_start|>assistant\n<think>\nThe question asks about the author.\n</think>\n<search>novel author</search>\n<answer>The author is unknown.</answer><|im_end|>\n",
	"In 1984, the population was 12345 and it grew by 7% every year; by 2024 it was 67890.",
	"Les élèves étudient à l'école. Où est la bibliothèque? Déjà vu, café, naïve.",
	"数据科学是一门跨学科的领域。机器学习是人工智能的一个分支。数据很重要。",
	"Привет, мир! Как дела? Мир большой, и мир красивый.",
	"func main() {\n\tfmt.Println(\"hello, world\")\n\tfor i := 0; i < 10; i++ {\n\t\tfmt.Println(i)\n\t}\n}\n",
	"def search(query):\n    results = retrieve(query)\n    return results\n\n\nprint(search('the answer'))\n",
	"  indented   text with   several    spaces\r\nand windows line endings\r\n\r\n",
	"emoji 🙂🙂 and symbols ©®™ — “quoted” ‘text’ … ok",
	"It's, they're, we've, I'm, you'll, he'd, IT'S, THEY'RE.",
}

func trainingTexts() iter.Seq[string] {
	return func(yield func(string) bool) {
		for round := range 3 {
			for _, s := range trainingText {
				if round > 0 {
					s = strings.ReplaceAll(s, "the", "The")
				}
				if !yield(s) {
					return
				}
			}
		}
	}
}

var testTrainOptions = TrainOptions{
	VocabSize:    420,
	AddedTokens:  []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<search>", "</search>", "<answer>", "</answer>"},
	SpecialCount: 3,
	EOSToken:     "<|im_end|>",
	PadToken:     "<|endoftext|>",
	ChatTemplate: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
}

// trainTestTokenizer trains on trainingTexts, writes the files and loads them.
func trainTestTokenizer(t testing.TB) (string, *Tokenizer) {
	t.Helper()
	m, err := TrainBPE(context.Background(), trainingTexts(), testTrainOptions)
	if err != nil {
		t.Fatal(err)
	}
	return writeAndLoad(t, m)
}

var roundTripCases = []string{
	"",
	"The quick brown fox",
	"the capital of France is Paris.",
	"Déjà vu: café naïve e\u0301",
	"数据科学和机器学习",
	"Привет, мир!",
	"emoji 🙂 and 🦀 unseen",
	"line one\nline two\r\n\n\n  indented\ttab",
	"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\nhm</think><answer>42</answer><|im_end|>",
	"text<|im_end|>more text<|endoftext|>",
	"numbers 1234567890 and 3.14159",
	"It's IT'S they'RE",
	"   leading and trailing spaces   ",
	"\x00\x01 control \u200b zero width",
	"<|im_end", // an incomplete marker is ordinary text
}

func TestTrainBPE(t *testing.T) {
	_, tok := trainTestTokenizer(t)
	if got := tok.VocabSize(); got != testTrainOptions.VocabSize {
		t.Errorf("VocabSize() = %d, want %d", got, testTrainOptions.VocabSize)
	}
	for _, s := range roundTripCases {
		if got := tok.Decode(tok.Encode(s)); got != norm.NFC.String(s) {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	for i, a := range testTrainOptions.AddedTokens {
		want := int32(testTrainOptions.VocabSize - len(testTrainOptions.AddedTokens) + i)
		if ids := tok.Encode(a); !slices.Equal(ids, []int32{want}) {
			t.Errorf("Encode(%q) = %v, want [%d]", a, ids, want)
		}
		if ids := tok.Encode("x " + a + " y"); !slices.Contains(ids, want) {
			t.Errorf("Encode of %q inside text = %v, lacks %d", a, ids, want)
		}
	}
	for _, word := range []string{"The", " the", " capital", " France", " fox", " is", "数据", " мир"} {
		if ids := tok.Encode(word); len(ids) != 1 {
			t.Errorf("frequent word %q encodes to %d tokens %v, want 1", word, len(ids), ids)
		}
	}
	for b := range 256 { // the base vocabulary is the bytes, in order
		if id, ok := tok.TokenID(string(byteToRune[b])); !ok || id != int32(b) {
			t.Errorf("byte %#x has id %d, %v", b, id, ok)
		}
	}
	if got := tok.DecodeSkipSpecial(tok.Encode("<|im_start|>user\nhi<|im_end|><think>x</think>")); got != "user\nhi<think>x</think>" {
		t.Errorf("DecodeSkipSpecial dropped the wrong tokens: %q", got)
	}
	eos, _ := tok.TokenID("<|im_end|>")
	if got := tok.EOSTokenIDs(); !slices.Equal(got, []int32{eos}) {
		t.Errorf("EOSTokenIDs() = %v, want [%d]", got, eos)
	}
	pad, _ := tok.TokenID("<|endoftext|>")
	if got, ok := tok.PadTokenID(); !ok || got != pad {
		t.Errorf("PadTokenID() = %d, %v, want %d", got, ok, pad)
	}
	chat, err := tok.ApplyChatTemplate([]Message{{Role: "user", Content: "hi"}}, true)
	if err != nil || chat != "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" {
		t.Errorf("ApplyChatTemplate = %q, %v", chat, err)
	}
}

func TestTrainBPEDeterministic(t *testing.T) {
	dirA, _ := trainTestTokenizer(t)
	dirB, _ := trainTestTokenizer(t)
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		a, errA := os.ReadFile(filepath.Join(dirA, name))
		b, errB := os.ReadFile(filepath.Join(dirB, name))
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("two trainings wrote different %s", name)
		}
	}
	entries, err := os.ReadDir(dirA)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("WriteDir left %d files, want 2 (no temporaries)", len(entries))
	}
}

// TestTrainBPETies checks the tie-break on a corpus where every pair is
// equally frequent: the reference prefers the pair whose tokens come first
// in its numbering (printable runes by code point, so "a" before "x" and
// both before "Ġ", the space, although the space byte is smaller).
func TestTrainBPETies(t *testing.T) {
	texts := slices.Values([]string{"ab xy ab xy"})
	m, err := TrainBPE(context.Background(), texts, TrainOptions{VocabSize: 259})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"a", "b"}, {"x", "y"}, {"Ġ", "xy"}}
	if !slices.Equal(m.merges, want) {
		t.Errorf("merges = %q, want %q", m.merges, want)
	}
}

func TestMergeWord(t *testing.T) {
	type change struct {
		p symbolPair
		n int64
	}
	tests := []struct {
		word  []int32
		pair  symbolPair
		want  []int32
		delta map[symbolPair]int64
	}{
		{[]int32{1, 1, 1, 1}, symbolPair{1, 1}, []int32{9, 9}, map[symbolPair]int64{{1, 1}: -3, {9, 9}: 1}},
		{[]int32{1, 1, 1}, symbolPair{1, 1}, []int32{9, 1}, map[symbolPair]int64{{1, 1}: -2, {9, 1}: 1}},
		{[]int32{2, 1, 3, 1, 3}, symbolPair{1, 3}, []int32{2, 9, 9}, map[symbolPair]int64{{2, 1}: -1, {2, 9}: 1, {1, 3}: -2, {3, 1}: -1, {9, 9}: 1}},
		{[]int32{1, 2}, symbolPair{2, 1}, []int32{1, 2}, map[symbolPair]int64{}},
	}
	for _, tt := range tests {
		got := map[symbolPair]int64{}
		word := mergeWord(slices.Clone(tt.word), tt.pair, 9, func(p symbolPair, n int64) {
			if got[p] += n; got[p] == 0 {
				delete(got, p)
			}
		})
		if !slices.Equal(word, tt.want) {
			t.Errorf("mergeWord(%v, %v) = %v, want %v", tt.word, tt.pair, word, tt.want)
		}
		if len(got) != len(tt.delta) {
			t.Errorf("mergeWord(%v, %v) changes %v, want %v", tt.word, tt.pair, got, tt.delta)
			continue
		}
		for p, n := range tt.delta {
			if got[p] != n {
				t.Errorf("mergeWord(%v, %v) changes %v, want %v", tt.word, tt.pair, got, tt.delta)
				break
			}
		}
	}
}

func TestTrainBPEErrors(t *testing.T) {
	texts := slices.Values([]string{"some text"})
	for _, tt := range []struct {
		name  string
		texts iter.Seq[string]
		opts  TrainOptions
		want  string
	}{
		{"vocab too small", texts, TrainOptions{VocabSize: 257, AddedTokens: []string{"<a>", "<b>"}}, "VocabSize 257"},
		{"no text", slices.Values([]string(nil)), TrainOptions{VocabSize: 300}, "no training text"},
		{"only added tokens", slices.Values([]string{"<a><a>"}), TrainOptions{VocabSize: 300, AddedTokens: []string{"<a>"}}, "no training text"},
		{"eos not added", texts, TrainOptions{VocabSize: 300, EOSToken: "</s>"}, "EOSToken"},
		{"pad not added", texts, TrainOptions{VocabSize: 300, AddedTokens: []string{"</s>"}, EOSToken: "</s>", PadToken: "<pad>"}, "PadToken"},
		{"special count", texts, TrainOptions{VocabSize: 300, AddedTokens: []string{"</s>"}, SpecialCount: 2}, "SpecialCount"},
		{"duplicate added", texts, TrainOptions{VocabSize: 300, AddedTokens: []string{"</s>", "</s>"}}, "twice"},
		{"empty added", texts, TrainOptions{VocabSize: 300, AddedTokens: []string{""}}, "empty"},
		{"negative frequency", texts, TrainOptions{VocabSize: 300, MinFrequency: -1}, "MinFrequency"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := TrainBPE(context.Background(), tt.texts, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestTrainBPECancel(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TrainBPE(cancelled, trainingTexts(), testTrainOptions); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before training: error %v, want context.Canceled", err)
	}
	// Cancelled while the texts are being read: the iterator stops early.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	read := 0
	endless := func(yield func(string) bool) {
		for {
			if read++; read == 5000 {
				cancel()
			}
			if !yield("endless text ") {
				return
			}
		}
	}
	if _, err := TrainBPE(ctx, endless, testTrainOptions); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while counting: error %v, want context.Canceled", err)
	}
}

// TestTrainBPEMatchesPython loads the written tokenizer with Hugging Face
// tokenizers and compares ids, and trains the reference BpeTrainer on the
// same text to compare merges.
func TestTrainBPEMatchesPython(t *testing.T) {
	python := fixtures.Python()
	if out, err := exec.Command(python, "-c", "import tokenizers").CombinedOutput(); err != nil {
		fixtures.Missing(t, "Python tokenizers for %s (%v: %s); run scripts/fetch_smollm2.sh, which installs it in .assets/venv", python, err, bytes.TrimSpace(out))
	}
	dir, tok := trainTestTokenizer(t)
	var texts []string
	for s := range trainingTexts() {
		texts = append(texts, s)
	}
	input, err := json.Marshal(map[string]any{
		"dir": dir, "encode": roundTripCases, "texts": texts,
		"vocab_size": testTrainOptions.VocabSize, "added": testTrainOptions.AddedTokens,
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", pythonCheck)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got struct {
		IDs     [][]int32  `json:"ids"`
		Decoded []string   `json:"decoded"`
		Merges  [][]string `json:"merges"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for i, s := range roundTripCases {
		if ids := tok.Encode(s); !slices.Equal(ids, got.IDs[i]) {
			t.Errorf("Encode(%q)\n   got %v\n  python %v", s, ids, got.IDs[i])
		}
		if d := tok.Decode(got.IDs[i]); d != got.Decoded[i] {
			t.Errorf("Decode(%v) = %q, python %q", got.IDs[i], d, got.Decoded[i])
		}
	}
	m, err := TrainBPE(context.Background(), trainingTexts(), testTrainOptions)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Merges) != len(m.merges) {
		t.Errorf("python's trainer learnt %d merges, TrainBPE %d", len(got.Merges), len(m.merges))
	}
	for i := range min(len(got.Merges), len(m.merges)) {
		if p := got.Merges[i]; len(p) != 2 || p[0] != m.merges[i][0] || p[1] != m.merges[i][1] {
			t.Errorf("merge %d: python %q, TrainBPE %q", i, p, m.merges[i])
			break
		}
	}
}

const pythonCheck = `
import json, re, sys
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers, Regex
req = json.load(sys.stdin)
tok = Tokenizer.from_file(req["dir"] + "/tokenizer.json")
ids = [tok.encode(s).ids for s in req["encode"]]
decoded = [tok.decode(i, skip_special_tokens=False) for i in ids]

ref = Tokenizer.from_file(req["dir"] + "/tokenizer.json")
ref.model = models.BPE()
trainer = trainers.BpeTrainer(vocab_size=req["vocab_size"], min_frequency=2, show_progress=False,
    special_tokens=req["added"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
added = sorted(req["added"], key=len, reverse=True)
cut = re.compile("|".join(re.escape(a) for a in added))
pieces = [p for t in req["texts"] for p in cut.split(t) if p]
ref.train_from_iterator(pieces, trainer=trainer)
merges = json.loads(ref.to_str())["model"]["merges"]
merges = [m.split(" ") if isinstance(m, str) else m for m in merges]
json.dump({"ids": ids, "decoded": decoded, "merges": merges}, sys.stdout)
`

func FuzzTrainedRoundTrip(f *testing.F) {
	for _, s := range []string{"Hello world", "  x\n\n y", "<|im_start|>hi<think>", "数字123", "é́", "a'S'll", "\r\n\t"} {
		f.Add(s)
	}
	_, tok := trainTestTokenizer(f)
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		// Text between added tokens is normalised on its own, as in HF.
		var want strings.Builder
		for rest := s; ; {
			pos, added := tok.nextAdded(rest)
			want.WriteString(norm.NFC.String(rest[:pos]))
			if added == nil {
				break
			}
			want.WriteString(added.Content)
			rest = rest[pos+len(added.Content):]
		}
		if got := tok.Decode(tok.Encode(s)); got != want.String() {
			t.Fatalf("round trip of %q gave %q, want %q", s, got, want.String())
		}
	})
}

// encodePieces encodes text with a tokenizer written from m and returns the
// tokens as text.
func encodePieces(t *testing.T, m *BPEModel, text string) []string {
	t.Helper()
	_, tok := writeAndLoad(t, m)
	var out []string
	for _, id := range tok.Encode(text) {
		out = append(out, tok.Decode([]int32{id}))
	}
	return out
}

// TestSyllableMerges trains on made-up names ("Bakota", "Tabo") and an
// English word that shares letters with them ("kotaro"): initial merges put
// the syllables first, SplitPiece keeps names from teaching merges across
// syllables, and DropCrossingMerges removes the merge "kotaro" teaches
// ("ko"+"ta"), which would join two syllables of "Bakota".
func TestSyllableMerges(t *testing.T) {
	var texts []string
	for range 50 {
		texts = append(texts, "kotaro kotaro kotaro", "Bakota Tabo")
	}
	syllables := func(piece string) []string {
		switch strings.TrimSpace(piece) {
		case "Bakota":
			return []string{piece[:len(piece)-4], "ko", "ta"}
		case "Tabo":
			return []string{piece[:len(piece)-2], "bo"}
		}
		return nil
	}
	opts := TrainOptions{VocabSize: 300, SplitPiece: syllables,
		InitialMerges: [][2]string{{"B", "a"}, {"k", "o"}, {"t", "a"}, {"T", "a"}, {"b", "o"}}}
	m, err := TrainBPE(context.Background(), slices.Values(texts), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.merges[:3]; !slices.Equal(got, [][2]string{{"B", "a"}, {"k", "o"}, {"t", "a"}}) {
		t.Fatalf("first merges %q, want the initial merges in order", got)
	}
	if got := encodePieces(t, m, "Bakota"); slices.Equal(got, []string{"Ba", "ko", "ta"}) {
		t.Fatalf("before DropCrossingMerges %q is already cut into syllables: the test teaches no crossing merge", got)
	}
	words := [][]string{{"Ba", "ko", "ta"}, {" Ba", "ko", "ta"}, {"Ta", "bo"}, {" Ta", "bo"}}
	if dropped := m.DropCrossingMerges(words); dropped == 0 {
		t.Errorf("no merge dropped")
	}
	for _, w := range words {
		// Each part may be several tokens, but no token spans two parts.
		got := encodePieces(t, m, strings.Join(w, ""))
		at, cuts := 0, map[int]bool{}
		for _, part := range w {
			cuts[at] = true
			at += len(part)
		}
		at = 0
		for _, tok := range got {
			for i := at + 1; i < at+len(tok); i++ {
				if cuts[i] {
					t.Errorf("%q is tokenised as %q: %q spans two syllables", strings.Join(w, ""), got, tok)
				}
			}
			at += len(tok)
		}
	}
	if got := encodePieces(t, m, " kotaro"); len(got) > 3 {
		t.Logf("kotaro is now %q", got)
	}
	if again := m.DropCrossingMerges(words); again != 0 {
		t.Errorf("a second pass dropped %d more merges", again)
	}
	// Every merge uses tokens made by bytes or earlier merges.
	have := map[string]bool{}
	for _, tok := range m.tokens[:256] {
		have[tok] = true
	}
	for _, mg := range m.merges {
		if !have[mg[0]] || !have[mg[1]] {
			t.Fatalf("merge %q uses a token no earlier merge makes", mg)
		}
		have[mg[0]+mg[1]] = true
	}
	if len(have) != len(m.tokens) {
		t.Errorf("%d tokens, %d made by bytes and merges", len(m.tokens), len(have))
	}

	bad := opts
	bad.InitialMerges = [][2]string{{"ko", "n"}}
	if _, err := TrainBPE(context.Background(), slices.Values(texts), bad); err == nil || !strings.Contains(err.Error(), "initial merge") {
		t.Errorf("an initial merge of an unknown token: %v", err)
	}
}

// writeAndLoad writes m to a temporary directory and loads it back.
func writeAndLoad(t testing.TB, m *BPEModel) (string, *Tokenizer) {
	t.Helper()
	dir := t.TempDir()
	if err := m.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, tok
}
