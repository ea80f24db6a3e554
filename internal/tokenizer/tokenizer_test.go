package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/ssp-project/ssp/internal/fixtures"
)

// sharedDir is the fixtures directory beside the checkout.
func sharedDir(t testing.TB) string {
	t.Helper()
	fixtures.Shared(t, "tokenizers", "qwen3", "tokenizer.json")
	return fixtures.Shared(t, "tokenizers", "qwen3")
}

var qwen3 *Tokenizer

func loadQwen3(t testing.TB) *Tokenizer {
	dir := sharedDir(t)
	if qwen3 == nil {
		tok, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		qwen3 = tok
	}
	return qwen3
}

// TestQwen3Parity checks every reference case of the real Qwen3 tokenizer.
func TestQwen3Parity(t *testing.T) {
	tok := loadQwen3(t)
	f, err := os.Open(filepath.Join(sharedDir(t), "cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	n, bad := 0, 0
	for sc.Scan() {
		var c struct {
			Text    string  `json:"text"`
			IDs     []int32 `json:"ids"`
			Decoded string  `json:"decoded"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		n++
		if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
			bad++
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
		if got := tok.Decode(c.IDs); got != c.Decoded {
			bad++
			t.Errorf("Decode(%v) = %q, want %q", c.IDs, got, c.Decoded)
		}
	}
	if n == 0 {
		t.Fatal("no cases")
	}
	t.Logf("%d cases, %d mismatches", n, bad)
}

func TestQwen3Config(t *testing.T) {
	tok := loadQwen3(t)
	if id, _ := tok.TokenID("<|im_end|>"); !slices.Contains(tok.EOSTokenIDs(), id) {
		t.Errorf("EOS ids %v do not include <|im_end|> (%d)", tok.EOSTokenIDs(), id)
	}
	if id, ok := tok.PadTokenID(); !ok || tok.Decode([]int32{id}) != "<|endoftext|>" {
		t.Errorf("pad = %d, %v", id, ok)
	}
	if _, ok := tok.BOSTokenID(); ok {
		t.Error("Qwen3 has no BOS token")
	}
	if tok.VocabSize() < 151643 {
		t.Errorf("vocab size %d", tok.VocabSize())
	}
	special := tok.Encode("<|im_start|>user\nhi<|im_end|>")
	if got := tok.DecodeSkipSpecial(special); got != "user\nhi" {
		t.Errorf("DecodeSkipSpecial = %q", got)
	}
}

func TestSplitPatterns(t *testing.T) {
	tests := []struct {
		pattern splitPattern
		in      string
		want    []string
	}{
		{knownPatterns[qwenRegex], "Hello  world!\n\n  x", []string{"Hello", " ", " world", "!\n\n", " ", " x"}},
		{knownPatterns[qwenRegex], "it's 2024", []string{"it", "'s", " ", "2", "0", "2", "4"}},
		{knownPatterns[qwenRegex], "IT'S", []string{"IT", "'S"}},
		{knownPatterns[qwenRegex], "a  \n b", []string{"a", "  \n", " b"}},
		{gpt2Pattern, "it's 2024  end ", []string{"it", "'s", " 2024", " ", " end", " "}},
		{gpt2Pattern, "IT'S", []string{"IT", "'", "S"}},
	}
	for _, tt := range tests {
		if got := tt.pattern.split(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s split(%q) = %q, want %q", tt.pattern.name, tt.in, got, tt.want)
		}
	}
}

const qwenRegex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ json, want string }{
		{`{"model":{"type":"Unigram"}}`, "model.type"},
		{`{"model":{"type":"BPE","vocab":{},"merges":["ab"]},"pre_tokenizer":{"type":"ByteLevel"}}`, "model.merges[0]"},
		{`{"model":{"type":"BPE","vocab":{},"merges":[]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated"}}`, "unsupported pre-tokenizer split pattern"},
		{`not json`, "tokenizer.json"},
	} {
		p := filepath.Join(dir, "tokenizer.json")
		os.WriteFile(p, []byte(tt.json), 0o644)
		_, err := LoadFile(p)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadFile(%s) error %v, want it to mention %q", tt.json, err, tt.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("Load of a missing dir succeeded")
	}
}

func TestLossyUTF8(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ok", "ok"},
		{"\xe4\xb8a", "\ufffda"},               // truncated 3-byte sequence: one replacement
		{"\xff\xfe", "\ufffd\ufffd"},           // two invalid bytes
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"}, // surrogate: each byte invalid
	} {
		if got := lossyUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"Hello world", "  x\n\n y", "<|im_start|>hi", "数字123", "é́", "a'S'll"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := loadQwen3(t)
		if !utf8.ValidString(s) {
			return
		}
		if got, want := tok.Decode(tok.Encode(s)), norm.NFC.String(s); got != want && !strings.Contains(s, "<|") {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
	})
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"Hello  world!\n\n  x", "it's", " \t\r\n", "１２３abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range knownPatterns {
			pieces := p.split(s)
			if got := strings.Join(pieces, ""); got != string([]rune(s)) {
				t.Fatalf("%s: pieces of %q join to %q", p.name, s, got)
			}
		}
	})
}

// TestChatTemplateGolden compares with Qwen3's chat_template rendered by
// jinja2 (scripts/gen_chat_golden.py).
func TestChatTemplateGolden(t *testing.T) {
	tok := loadQwen3(t)
	data, err := os.ReadFile("testdata/chat_golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c struct {
			Messages            []Message `json:"messages"`
			AddGenerationPrompt bool      `json:"add_generation_prompt"`
			Rendered            string    `json:"rendered"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		got, err := tok.ApplyChatTemplate(c.Messages, c.AddGenerationPrompt)
		if err != nil || got != c.Rendered {
			t.Errorf("ApplyChatTemplate(%v, %v) = %q, %v\nwant %q", c.Messages, c.AddGenerationPrompt, got, err, c.Rendered)
		}
		// The prompt every rollout starts from: a system and a user message,
		// then the generation prompt (mutation seen to fail: roles swapped).
		if len(c.Messages) == 2 && c.Messages[0].Role == "system" && c.Messages[1].Role == "user" && c.AddGenerationPrompt {
			checked++
			if got, err := tok.SystemUserPrompt(c.Messages[0].Content, c.Messages[1].Content); err != nil || got != c.Rendered {
				t.Errorf("SystemUserPrompt = %q, %v\nwant %q", got, err, c.Rendered)
			}
		}
	}
	if checked != 1 {
		t.Errorf("%d golden cases of one system and one user message with the generation prompt, want 1", checked)
	}
}

func TestDigitSplit(t *testing.T) {
	for _, tt := range []struct {
		d    digitSplit
		in   string
		want []string
	}{
		{digitsIndividual, "In 1984, x", []string{"In ", "1", "9", "8", "4", ", x"}},
		{digitsGrouped, "In 1984, x2", []string{"In ", "1984", ", x", "2"}},
		{digitsIndividual, "١٢", []string{"١", "٢"}},
		{digitsNone, "a1", []string{"a1"}},
		{digitsIndividual, "", []string{""}},
	} {
		if got := tt.d.split(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestByteAlphabet pins a few entries of GPT-2's bytes_to_unicode: the
// printable bytes stand for themselves, the 68 others take U+0100 onwards
// in byte order (0x00 → Ā, space 0x20 → Ġ, 0xAD → Ń).
func TestByteAlphabet(t *testing.T) {
	a := ByteAlphabet()
	for b, want := range map[int]string{0x00: "Ā", 0x20: "Ġ", 'A': "A", 0x7F: "ġ", 0xA0: "ł", 0xAD: "Ń", 0xFF: "ÿ"} {
		if a[b] != want {
			t.Errorf("ByteAlphabet()[%#x] = %q, want %q", b, a[b], want)
		}
	}
	if n := len(slices.Compact(slices.Sorted(slices.Values(a)))); n != 256 {
		t.Errorf("ByteAlphabet has %d distinct tokens, want 256", n)
	}
}
