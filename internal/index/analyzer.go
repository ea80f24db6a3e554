package index

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// englishStopwords is Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, the
// list Pyserini's default analyzer removes.
var englishStopwords = map[string]bool{
	"a": true, "an": true, "and": true, "are": true, "as": true, "at": true, "be": true,
	"but": true, "by": true, "for": true, "if": true, "in": true, "into": true, "is": true,
	"it": true, "no": true, "not": true, "of": true, "on": true, "or": true, "such": true,
	"that": true, "the": true, "their": true, "then": true, "there": true, "these": true,
	"they": true, "this": true, "to": true, "was": true, "will": true, "with": true,
}

// Analyzer turns text into index terms. Its switches are stored in the index
// metadata so that queries are analysed exactly as the documents were.
type Analyzer struct {
	Lowercase  bool `json:"lowercase"`
	Stopwords  bool `json:"stopwords"`
	Stem       bool `json:"stem"`
	Possessive bool `json:"possessive"`
}

// DefaultAnalyzer is the chain of Lucene's EnglishAnalyzer as used by
// Pyserini: word tokenisation, possessive removal, lower-casing, English
// stopwords, Porter stemming.
func DefaultAnalyzer() Analyzer {
	return Analyzer{Lowercase: true, Stopwords: true, Stem: true, Possessive: true}
}

// Terms appends the terms of text to dst and returns it.
func (a Analyzer) Terms(dst []string, text string) []string {
	return a.terms(dst, text, porterStem)
}

func (a Analyzer) terms(dst []string, text string, stem func(string) string) []string {
	tokenize(text, func(tok string) {
		if term, ok := a.normalize(tok, stem); ok {
			dst = append(dst, term)
		}
	})
	return dst
}

// normalize turns one token into its term; ok is false for dropped tokens.
func (a Analyzer) normalize(tok string, stem func(string) string) (term string, ok bool) {
	if a.Possessive {
		tok = stripPossessive(tok)
	}
	if a.Lowercase {
		tok = lower(tok)
	}
	if a.Stopwords && englishStopwords[tok] {
		return "", false
	}
	if a.Stem {
		tok = stem(tok)
	}
	return tok, tok != ""
}

// lower lower-cases s, avoiding an allocation for ASCII that is already lower case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// stripPossessive removes a trailing 's (with ASCII or typographic
// apostrophe), as Lucene's EnglishPossessiveFilter does.
func stripPossessive(tok string) string {
	for _, suf := range [...]string{"'s", "'S", "\u2019s", "\u2019S", "\uff07s", "\uff07S"} {
		if len(tok) > len(suf) && strings.HasSuffix(tok, suf) {
			return tok[:len(tok)-len(suf)]
		}
	}
	return tok
}

// isIdeographic reports whether r is emitted as a token of its own, as the
// Unicode word-break rules (and Lucene's StandardTokenizer) do for Han,
// Hiragana and Thai-like scripts without spaces.
func isIdeographic(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)
}

// isMidLetter reports whether r joins two letters into one word ("don't",
// "U.S.A"), following UAX #29's MidLetter and MidNumLet classes.
func isMidLetter(r rune) bool {
	return r == '\'' || r == '.' || r == ':' || r == '\u2019' || r == '\u00b7' || r == '\uff07'
}

// isMidNum reports whether r joins two digits into one number ("3.14", "1,000").
func isMidNum(r rune) bool {
	return r == '.' || r == ',' || r == ';' || r == '\'' || r == '\u2019'
}

// tokenize calls emit for each word of text. A word is a run of letters,
// digits and combining marks; a single joiner between two letters (or two
// digits) keeps the word together, as in UAX #29 word segmentation. Han and
// Hiragana characters are words of their own.
func tokenize(text string, emit func(string)) {
	start := -1
	var prev rune
	for i := 0; i < len(text); {
		if c := text[i]; c < utf8.RuneSelf {
			// ASCII fast path: the same rules as below without table lookups.
			alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
			if alnum {
				if start < 0 {
					start = i
				}
				prev = rune(c)
				i++
				continue
			}
			if start < 0 || !isMidLetter(rune(c)) && !isMidNum(rune(c)) {
				if start >= 0 {
					emit(text[start:i])
					start = -1
				}
				prev = rune(c)
				i++
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case isIdeographic(r):
			if start >= 0 {
				emit(text[start:i])
				start = -1
			}
			emit(text[i : i+size])
		case isWordRune(r):
			if start < 0 {
				start = i
			}
		case start >= 0 && (isMidLetter(r) || isMidNum(r)):
			next, _ := utf8.DecodeRuneInString(text[i+size:])
			joins := isMidLetter(r) && unicode.IsLetter(prev) && unicode.IsLetter(next) && !isIdeographic(next) ||
				isMidNum(r) && unicode.IsDigit(prev) && unicode.IsDigit(next)
			if !joins {
				emit(text[start:i])
				start = -1
			}
		default:
			if start >= 0 {
				emit(text[start:i])
				start = -1
			}
		}
		prev = r
		i += size
	}
	if start >= 0 {
		emit(text[start:])
	}
}
