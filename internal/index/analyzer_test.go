package index

import (
	"slices"
	"testing"
)

func TestAnalyzerTerms(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Analyzer
		in   string
		want []string
	}{
		{"default", DefaultAnalyzer(), "The Quick brown foxes jumped over John's lazy dogs.", []string{"quick", "brown", "fox", "jump", "over", "john", "lazi", "dog"}},
		{"numbers and joiners", DefaultAnalyzer(), "U.S.A. had 1,000 cats in 3.14 rooms; don't", []string{"u.s.a", "had", "1,000", "cat", "3.14", "room", "don't"}},
		{"typographic possessive", DefaultAnalyzer(), "Einstein\u2019s theory", []string{"einstein", "theori"}},
		{"unicode", DefaultAnalyzer(), "Ærø café naïve", []string{"ærø", "café", "naïv"}},
		{"han split", DefaultAnalyzer(), "北京大学 is big", []string{"北", "京", "大", "学", "big"}},
		{"no stem", Analyzer{Lowercase: true, Stopwords: true, Possessive: true}, "The running dogs", []string{"running", "dogs"}},
		{"no stopwords", Analyzer{Lowercase: true}, "The running dogs", []string{"the", "running", "dogs"}},
		{"raw", Analyzer{}, "The dog's", []string{"The", "dog's"}},
		{"punctuation only", DefaultAnalyzer(), "--- ... !!!", nil},
		{"trailing joiner", DefaultAnalyzer(), "end. start' x", []string{"end", "start", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.a.Terms(nil, tc.in)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Terms(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzAnalyzer(f *testing.F) {
	for _, s := range []string{"Hello, world's end", "3.14.15", "a'b'c", "\u2019s", "北京", "\xffbad utf8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, term := range DefaultAnalyzer().Terms(nil, s) {
			if term == "" || englishStopwords[term] {
				t.Fatalf("bad term %q from %q", term, s)
			}
		}
	})
}

func TestSmallFloatNorms(t *testing.T) {
	for b := 0; b < 256; b++ {
		if got := lengthToNorm(normToLength(byte(b))); got != byte(b) {
			t.Errorf("lengthToNorm(normToLength(%d)) = %d", b, got)
		}
	}
	prev := byte(0)
	for l := 0; l < 1<<20; l++ {
		n := lengthToNorm(l)
		if n < prev {
			t.Fatalf("lengthToNorm not monotonic at %d", l)
		}
		if d := normToLength(n); d > l {
			t.Fatalf("normToLength(lengthToNorm(%d)) = %d > %d", l, d, l)
		}
		prev = n
	}
	// Values from Lucene's SmallFloat: lengths below 24 + 16 are exact,
	// then the excess over 24 keeps 4 significant bits.
	for _, tc := range []struct{ l, want int }{{0, 0}, {23, 23}, {24, 24}, {31, 31}, {32, 32}, {33, 33}, {39, 39}, {40, 40}, {41, 40}, {100, 96}, {1000, 984}} {
		if got := normToLength(lengthToNorm(tc.l)); got != tc.want {
			t.Errorf("round trip of length %d = %d, want %d", tc.l, got, tc.want)
		}
	}
}
