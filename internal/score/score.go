// Package score implements the answer metrics every number of ssp is built
// on: SQuAD v1.1's answer normalisation, exact match (EM), substring exact
// match (SubEM) and token F1, each the maximum over the gold aliases, plus
// extraction of the final answer from an agent's response.
package score

import (
	"strings"
	"unicode"
)

// asciiPunctuation is Python's string.punctuation, which SQuAD's
// normalize_answer removes; other Unicode punctuation is kept, as there.
const asciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// Normalize lower-cases s, removes ASCII punctuation, removes the articles
// a/an/the as whole words and collapses whitespace, in the order of SQuAD
// v1.1's official normalize_answer.
func Normalize(s string) string {
	s = pythonLower(s)
	s = strings.Map(func(r rune) rune {
		if r < 128 && strings.ContainsRune(asciiPunctuation, r) {
			return -1
		}
		return r
	}, s)
	s = removeArticles(s)
	return strings.Join(strings.Fields(pythonWhitespace(s)), " ")
}

// removeArticles deletes the words a, an and the where Python's regex
// `\b(a|an|the)\b` matches them: bounded by non-word characters, where word
// characters are Unicode letters, digits and underscore. The surrounding
// spaces stay (SQuAD replaces the article by one space).
func removeArticles(s string) string {
	rs := []rune(s)
	var b strings.Builder
	isWord := func(i int) bool {
		if i < 0 || i >= len(rs) {
			return false
		}
		r := rs[i]
		return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
	}
	for i := 0; i < len(rs); {
		if !isWord(i - 1) {
			matched := 0
			for _, art := range []string{"the", "an", "a"} {
				n := len(art)
				if i+n <= len(rs) && string(rs[i:i+n]) == art && !isWord(i+n) {
					matched = n
					break
				}
			}
			if matched > 0 {
				b.WriteByte(' ')
				i += matched
				continue
			}
		}
		b.WriteRune(rs[i])
		i++
	}
	return b.String()
}

// pythonLower lower-cases like Python's str.lower, which differs from
// strings.ToLower in two mappings that occur in real text: capital I with
// dot above becomes "i" plus a combining dot, and a capital sigma at the end
// of a word becomes the final form ς.
func pythonLower(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && i > 0 && unicode.IsLetter(rs[i-1]) && (i+1 == len(rs) || !unicode.IsLetter(rs[i+1])):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// pythonWhitespace maps the characters Python's str.split treats as
// whitespace but Go's strings.Fields does not (the ASCII separators
// 0x1c-0x1f) to spaces, so token boundaries match the reference.
func pythonWhitespace(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 0x1c && r <= 0x1f {
			return ' '
		}
		return r
	}, s)
}

// ExactMatch reports whether the normalised prediction equals some
// normalised gold alias. An empty alias list never matches.
func ExactMatch(prediction string, golds []string) bool {
	p := Normalize(prediction)
	for _, g := range golds {
		if Normalize(g) == p {
			return true
		}
	}
	return false
}

// SubstringMatch (SubEM) reports whether some normalised gold alias occurs in
// the normalised prediction. An alias that normalises to "" never matches:
// it would make every prediction correct.
func SubstringMatch(prediction string, golds []string) bool {
	p := Normalize(prediction)
	for _, g := range golds {
		if ng := Normalize(g); ng != "" && strings.Contains(p, ng) {
			return true
		}
	}
	return false
}

// F1 is the best token-level F1 between the prediction and any gold alias,
// computed on normalised whitespace tokens with multiset overlap as in
// SQuAD v1.1. An empty alias list scores 0.
func F1(prediction string, golds []string) float64 {
	best := 0.0
	for _, g := range golds {
		best = max(best, tokenF1(prediction, g))
	}
	return best
}

func tokenF1(prediction, gold string) float64 {
	pt := strings.Fields(Normalize(prediction))
	gt := strings.Fields(Normalize(gold))
	counts := map[string]int{}
	for _, t := range gt {
		counts[t]++
	}
	common := 0
	for _, t := range pt {
		if counts[t] > 0 {
			counts[t]--
			common++
		}
	}
	if common == 0 {
		return 0
	}
	precision := float64(common) / float64(len(pt))
	recall := float64(common) / float64(len(gt))
	return 2 * precision * recall / (precision + recall)
}

// Scores holds the three metrics of one prediction.
type Scores struct {
	EM    int     `json:"em"`
	F1    float64 `json:"f1"`
	SubEM int     `json:"subem"`
}

// All computes EM, F1 and SubEM of a prediction against its gold aliases.
func All(prediction string, golds []string) Scores {
	return Scores{
		EM:    boolInt(ExactMatch(prediction, golds)),
		F1:    F1(prediction, golds),
		SubEM: boolInt(SubstringMatch(prediction, golds)),
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ExtractAnswer returns the body of the last complete <answer>…</answer> in
// a response, trimmed of surrounding whitespace. ok is false when there is
// none: a response without an answer tag has no answer, whatever it says.
func ExtractAnswer(response string) (answer string, ok bool) {
	end := strings.LastIndex(response, "</answer>")
	if end < 0 {
		return "", false
	}
	start := strings.LastIndex(response[:end], "<answer>")
	if start < 0 {
		return "", false
	}
	return strings.TrimSpace(response[start+len("<answer>") : end]), true
}

// CountAnswerTags counts opening <answer> tags; the self-play solver reward
// is cut when a response spams them.
func CountAnswerTags(response string) int {
	return strings.Count(response, "<answer>")
}
