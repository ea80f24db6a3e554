package score

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"The Eiffel Tower", "eiffel tower"},
		{"A tale, of two cities!", "tale of two cities"},
		{"Theatre", "theatre"}, // "the" inside a word stays
		{"an apple", "apple"},
		{"  x \t y\n", "x y"},
		{"U.S.A.", "usa"},
		{"“curly”", "“curly”"}, // only ASCII punctuation is removed
		{"", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	tests := []struct {
		pred  string
		golds []string
		em    bool
		subem bool
		f1    float64
	}{
		{"Paris", []string{"paris"}, true, true, 1},
		{"It is Paris.", []string{"Paris"}, false, true, 2 * (1.0 / 3) * 1 / (1.0/3 + 1)},
		{"London", []string{"Paris", "London"}, true, true, 1},
		{"anything", nil, false, false, 0},
		{"anything", []string{"the"}, false, false, 0}, // alias normalising to "" matches nothing
		{"", []string{"Paris"}, false, false, 0},
		{"red blue", []string{"blue green red"}, false, false, 2 * 1 * (2.0 / 3) / (1 + 2.0/3)},
	}
	for _, tt := range tests {
		if got := ExactMatch(tt.pred, tt.golds); got != tt.em {
			t.Errorf("ExactMatch(%q, %q) = %v", tt.pred, tt.golds, got)
		}
		if got := SubstringMatch(tt.pred, tt.golds); got != tt.subem {
			t.Errorf("SubstringMatch(%q, %q) = %v", tt.pred, tt.golds, got)
		}
		if got := F1(tt.pred, tt.golds); math.Abs(got-tt.f1) > 1e-12 {
			t.Errorf("F1(%q, %q) = %v, want %v", tt.pred, tt.golds, got, tt.f1)
		}
	}
}

// TestSQuADGolden compares with SQuAD v1.1's reference definitions as
// computed in Python by scripts/gen_squad_refs.py.
func TestSQuADGolden(t *testing.T) {
	f, err := os.Open("testdata/squad_golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var c struct {
			Prediction    string   `json:"prediction"`
			GoldenAnswers []string `json:"golden_answers"`
			Normalized    string   `json:"normalized"`
			EM, SubEM     int
			F1            float64
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		n++
		if got := Normalize(c.Prediction); got != c.Normalized {
			t.Errorf("Normalize(%q) = %q, reference %q", c.Prediction, got, c.Normalized)
		}
		s := All(c.Prediction, c.GoldenAnswers)
		if s.EM != c.EM || s.SubEM != c.SubEM || math.Abs(s.F1-c.F1) > 1e-9 {
			t.Errorf("All(%q, %q) = %+v, reference em=%d f1=%v subem=%d", c.Prediction, c.GoldenAnswers, s, c.EM, c.F1, c.SubEM)
		}
	}
	if n < 20 {
		t.Fatalf("only %d golden cases", n)
	}
}

func TestExtractAnswer(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"<answer> Paris </answer>", "Paris", true},
		{"<answer>a</answer> then <answer>b</answer>", "b", true},
		{"no tag here", "", false},
		{"<answer>unclosed", "", false},
		{"</answer> backwards <answer>", "", false},
		{"<answer>x</answer><answer>y", "x", true},
		{"<answer></answer>", "", true},
	}
	for _, tt := range tests {
		got, ok := ExtractAnswer(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ExtractAnswer(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if n := CountAnswerTags("<answer>a</answer><answer>b</answer>"); n != 2 {
		t.Errorf("CountAnswerTags = %d, want 2", n)
	}
}

func FuzzExtractAnswer(f *testing.F) {
	for _, s := range []string{"<answer>x</answer>", "<answer><answer>", "</answer>", "a<answer>b</answer>c<answer>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ExtractAnswer(s)
		if !ok {
			if got != "" {
				t.Fatalf("no answer but got %q", got)
			}
			return
		}
		if !strings.Contains(s, got) || strings.Contains(got, "</answer>") {
			t.Fatalf("ExtractAnswer(%q) = %q is not a tag body", s, got)
		}
		_ = All(got, []string{s})
	})
}
