package selfplay

import (
	"reflect"
	"strings"
	"testing"
)

func TestLoadSeeds(t *testing.T) {
	seeds, err := LoadSeeds("testdata/seeds.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	want := []Seed{
		{Answers: []string{"Osk"}, Hops: 2},
		{Answers: []string{"Mira Tal", "Tal"}, Hops: 3},
		{Answers: []string{"Brenn"}, Hops: 4, Example: "Which village was the sailor born in?"},
		{Answers: []string{"Grey Coast", "the Grey Coast"}},
		{Answers: []string{"Lake Varn"}},
		{Answers: []string{"Red Harbour"}},
	}
	if !reflect.DeepEqual(seeds, want) {
		t.Fatalf("LoadSeeds =\n%+v\nwant\n%+v", seeds, want)
	}
}

func TestParseSeedsErrors(t *testing.T) {
	tests := []struct {
		input, want string
	}{
		{`{"answer": "Osk"}` + "\n" + `{"hops": 2}`, "x.jsonl:2: no answer"},
		{`{"answer": ""}`, "x.jsonl:1: answer: empty"},
		{`{"answer": [" ", ""]}`, "answer: empty"},
		{`{"answer": 5}`, "answer: want a string or a list of strings"},
		{`{"answer": "Osk", "hops": -1}`, "hops: must not be negative"},
		{`{"answer": "Osk"`, "x.jsonl:1:"},
		{`{"reward_model": {"ground_truth": {"style": "rule"}}}`, "no \"target\""},
		{"\n\n", "no rows"},
	}
	for _, tt := range tests {
		_, err := ParseSeeds(strings.NewReader(tt.input), "x.jsonl")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSeeds(%q) error = %v, want it to mention %q", tt.input, err, tt.want)
		}
	}
	if _, err := LoadSeeds("testdata/missing.jsonl"); err == nil {
		t.Error("missing file: no error")
	}
}

func FuzzParseSeeds(f *testing.F) {
	for _, s := range []string{
		`{"answer": "Osk", "hops": 2}`, `{"answer": ["a", "b"]}`, `{"ground_truth": "x", "search_turns": 3}`,
		`{"reward_model": {"ground_truth": {"target": "y"}}}`, `{"answer": null, "ground_truth": ["z"]}`, "", "{", "[]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		seeds, err := ParseSeeds(strings.NewReader(input), "fuzz")
		if err != nil {
			return
		}
		for _, s := range seeds {
			if len(s.Answers) == 0 || s.Hops < 0 {
				t.Fatalf("invalid seed accepted: %+v", s)
			}
			for _, a := range s.Answers {
				if a == "" || a != strings.TrimSpace(a) {
					t.Fatalf("untrimmed or empty alias %q", a)
				}
			}
		}
	})
}
