package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The split patterns of byte-level BPE tokenizers use a negative look-ahead
// (`\s+(?!\S)`) that Go's regexp cannot express, so each known pattern is
// implemented as a scanner with the regex's leftmost-first semantics.
// splitPattern holds what differs between the known patterns.
type splitPattern struct {
	name string
	// foldContractions: (?i:'s|'t|...) instead of case-sensitive 's|'t|...
	foldContractions bool
	// letterPrefixAny: `[^\r\n\p{L}\p{N}]?\p{L}+` instead of ` ?\p{L}+`.
	letterPrefixAny bool
	// maxDigits bounds a run of numbers (\p{N} → 1, \p{N}{1,3} → 3, 0 = unbounded).
	maxDigits int
	// digitSpacePrefix: ` ?\p{N}+` (GPT-2).
	digitSpacePrefix bool
	// newlineAware: punctuation absorbs trailing [\r\n]*, plus the `\s*[\r\n]+` alternative.
	newlineAware bool
}

var knownPatterns = map[string]splitPattern{
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: {
		name: "qwen2", foldContractions: true, letterPrefixAny: true, maxDigits: 1, newlineAware: true},
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: {
		name: "llama3", foldContractions: true, letterPrefixAny: true, maxDigits: 3, newlineAware: true},
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`: {
		name: "gpt2", digitSpacePrefix: true},
}

// gpt2Pattern is what a ByteLevel pre-tokenizer with use_regex applies.
var gpt2Pattern = knownPatterns[`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`]

func lookupPattern(regex string) (splitPattern, error) {
	p, ok := knownPatterns[regex]
	if !ok {
		return splitPattern{}, fmt.Errorf("unsupported pre-tokenizer split pattern %q (supported: the Qwen2/Qwen3, Llama-3 and GPT-2 patterns)", regex)
	}
	return p, nil
}

func isL(r rune) bool     { return unicode.IsLetter(r) }
func isN(r rune) bool     { return unicode.IsNumber(r) }
func isS(r rune) bool     { return unicode.IsSpace(r) }
func isNL(r rune) bool    { return r == '\r' || r == '\n' }
func isPunct(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

// split cuts s into the pieces the pattern matches, in order; with the known
// patterns every rune belongs to some match, so the pieces concatenate to s.
func (p splitPattern) split(s string) []string {
	rs := []rune(s)
	var out []string
	for i := 0; i < len(rs); {
		n := p.matchAt(rs, i)
		if n <= 0 { // cannot happen with the known patterns; keep going rather than loop
			n = 1
		}
		out = append(out, string(rs[i:i+n]))
		i += n
	}
	return out
}

// matchAt returns the length in runes of the leftmost-first match at i.
func (p splitPattern) matchAt(rs []rune, i int) int {
	at := func(k int) (rune, bool) {
		if k < len(rs) {
			return rs[k], true
		}
		return 0, false
	}
	// 1. contractions
	if rs[i] == '\'' {
		for _, c := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
			n := utf8.RuneCountInString(c)
			if i+1+n <= len(rs) {
				got := string(rs[i+1 : i+1+n])
				if got == c || (p.foldContractions && strings.EqualFold(got, c)) {
					return 1 + n
				}
			}
		}
	}
	letters := func(k int) int {
		j := k
		for j < len(rs) && isL(rs[j]) {
			j++
		}
		return j - k
	}
	// 2. letters with an optional one-rune prefix
	if p.letterPrefixAny {
		if !isNL(rs[i]) && !isL(rs[i]) && !isN(rs[i]) {
			if n := letters(i + 1); n > 0 {
				return 1 + n
			}
		}
	} else if rs[i] == ' ' {
		if n := letters(i + 1); n > 0 {
			return 1 + n
		}
	}
	if n := letters(i); n > 0 {
		return n
	}
	// 3. numbers
	start := i
	if p.digitSpacePrefix && rs[i] == ' ' {
		if r, ok := at(i + 1); ok && isN(r) {
			start = i + 1
		}
	}
	if isN(rs[start]) {
		j := start
		for j < len(rs) && isN(rs[j]) && (p.maxDigits == 0 || j-start < p.maxDigits) {
			j++
		}
		return j - i
	}
	// 4. punctuation with an optional leading space
	start = i
	if rs[i] == ' ' {
		if r, ok := at(i + 1); ok && isPunct(r) {
			start = i + 1
		}
	}
	if isPunct(rs[start]) {
		j := start
		for j < len(rs) && isPunct(rs[j]) {
			j++
		}
		if p.newlineAware {
			for j < len(rs) && isNL(rs[j]) {
				j++
			}
		}
		return j - i
	}
	// 5-7. whitespace runs
	j := i
	for j < len(rs) && isS(rs[j]) {
		j++
	}
	if j == i {
		return 0
	}
	if p.newlineAware { // \s*[\r\n]+ : up to the last newline of the run
		for k := j - 1; k >= i; k-- {
			if isNL(rs[k]) {
				return k + 1 - i
			}
		}
	}
	if j == len(rs) { // \s+(?!\S) at the end of the text
		return j - i
	}
	if j-1 > i { // \s+(?!\S): leave the last space to prefix the next word
		return j - 1 - i
	}
	return j - i // \s+
}

// digitSplit is HF's Digits pre-tokenizer: numbers are cut apart from the
// rest of the text, one piece per digit or one per run of digits.
type digitSplit int

const (
	digitsNone digitSplit = iota
	digitsGrouped
	digitsIndividual
)

func (d digitSplit) split(s string) []string {
	if d == digitsNone {
		return []string{s}
	}
	var out []string
	start := 0
	prevDigit := false
	for i, r := range s {
		digit := isN(r)
		if i > start && (digit != prevDigit || (digit && d == digitsIndividual)) {
			out = append(out, s[start:i])
			start = i
		}
		prevDigit = digit
	}
	return append(out, s[start:])
}
