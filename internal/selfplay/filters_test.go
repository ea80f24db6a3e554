package selfplay

import (
	"reflect"
	"testing"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/search"
)

func TestExtractQuestion(t *testing.T) {
	tests := []struct {
		response, want string
		pass           bool
	}{
		{"<think>x</think><question> Who founded Osk? </question>", "Who founded Osk?", true},
		{"<question>First?</question> and <question>Second?</question>", "First?", true},
		{"<question></question>", "", false},
		{"Who founded Osk?", "", false},
		{"<question>unterminated", "", false},
	}
	for _, tt := range tests {
		got, v := ExtractQuestion(tt.response)
		if got != tt.want || v.Pass != tt.pass || v.Filter != FilterExtract {
			t.Errorf("ExtractQuestion(%q) = %q, %+v; want %q, pass=%v", tt.response, got, v, tt.want, tt.pass)
		}
	}
}

func TestCheckLength(t *testing.T) {
	cfg := FilterConfig{MinQuestionChars: 10, MaxQuestionChars: 40, MinQuestionWords: 3, MaxQuestionWords: 6}
	tests := []struct {
		q    string
		pass bool
	}{
		{"Who founded the town?", true},
		{"Who?", false},                 // 4 characters
		{"Whatsoever happened?", false}, // 2 words
		{"a b c d e f g", false},        // 13 chars, 7 words
		{"Which harbour town lies south of the lake of Varn?", false}, // 51 characters
		{"Qui a fondé Osk là-bas?", true},                             // characters, not bytes
	}
	for _, tt := range tests {
		if v := CheckLength(tt.q, cfg); v.Pass != tt.pass || v.Filter != FilterLength {
			t.Errorf("CheckLength(%q) = %+v, want pass=%v", tt.q, v, tt.pass)
		}
	}
}

func TestCheckAnswerLeak(t *testing.T) {
	tests := []struct {
		q       string
		answers []string
		pass    bool
	}{
		{"Who founded the harbour town?", []string{"Mira Tal"}, true},
		{"Did MIRA-TAL found it?", []string{"Mira Tal"}, false},             // case and punctuation normalised
		{"Was it Tal who founded Osk?", []string{"Mira Tal", "Tal"}, false}, // any alias
		{"Which totality holds?", []string{"Tal"}, true},                    // whole words only
		{"Which is the Osk of the north?", []string{"The Osk"}, false},      // articles dropped
	}
	for _, tt := range tests {
		if v := CheckAnswerLeak(tt.q, tt.answers); v.Pass != tt.pass {
			t.Errorf("CheckAnswerLeak(%q, %q) = %+v, want pass=%v", tt.q, tt.answers, v, tt.pass)
		}
	}
}

func TestCheckRetrieved(t *testing.T) {
	empty := agent.Trajectory{Searches: []agent.SearchCall{{Query: "x"}}}
	if v := CheckRetrieved(&empty); v.Pass {
		t.Errorf("no documents passed: %+v", v)
	}
	found := agent.Trajectory{Searches: []agent.SearchCall{{Query: "x", Documents: []search.Document{{ID: "1"}}}}}
	if v := CheckRetrieved(&found); !v.Pass {
		t.Errorf("documents failed: %+v", v)
	}
}

// TestCheckAnswerEvidence: a page about something else must name the
// answer; the answer's own page (title one of its names, in any case)
// does not count. Mutations checked: counting the answer's own page, and
// matching the answer inside a longer word ("Foze" in "Fozeli"), both
// fail it.
func TestCheckAnswerEvidence(t *testing.T) {
	doc := func(title, text string) search.Document {
		return search.Document{ID: title, Contents: "\"" + title + "\"\n" + text}
	}
	own := doc("Foze", "Foze is a city in Novamo. People born in Foze include Soge Pofepo.")
	unrelated := doc("Sisa Rigi", "Sisa Rigi was born in Jiga. The mentor of Sisa Rigi was Bepi Lelapa.")
	lookalike := doc("Rino Fozeli", "Rino Fozeli was born in Jiga.")
	linked := doc("Soge Pofepo", "Soge Pofepo was born in Foze; Soge Pofepo is a painter.")
	answers := []string{"Foze", "Kito"}
	for _, c := range []struct {
		name string
		docs []search.Document
		pass bool
	}{
		{"own page and an unrelated one", []search.Document{own, unrelated}, false},
		{"a look-alike name", []search.Document{own, lookalike}, false},
		{"nothing retrieved", nil, false},
		{"a page that states the fact", []search.Document{own, unrelated, linked}, true},
		{"the fact without the answer's page", []search.Document{linked}, true},
		{"own page under an alias title", []search.Document{doc("kito", "Kito, later Foze, is a city.")}, false},
	} {
		traj := agent.Trajectory{Searches: []agent.SearchCall{{Query: "q", Documents: c.docs}}}
		if v := CheckAnswerEvidence(&traj, answers); v.Pass != c.pass || v.Filter != FilterAnswerEvidence {
			t.Errorf("%s: %+v, want pass=%v", c.name, v, c.pass)
		}
	}
}

// TestCheckGroundedSearches: a later search may use the target's words and
// words of results shown before it, not words that only a later result
// shows. Mutations checked: counting a search's own results before
// checking it fails "a word its own results show"; leaving the target's
// names out fails "the target's name again"; checking the first search too
// fails "a first search of new words".
func TestCheckGroundedSearches(t *testing.T) {
	doc := func(title, text string) search.Document {
		return search.Document{ID: title, Contents: "\"" + title + "\"\n" + text}
	}
	page := doc("Lawapa Academy", "The Lawapa Academy was founded by Vike Peda. People who worked for it include Pifo Boze.")
	boze := doc("Pifo Boze", "Pifo Boze was born in Wimi.")
	answers := []string{"Vike Peda", "V. Peda"}
	call := func(q string, docs ...search.Document) agent.SearchCall {
		return agent.SearchCall{Query: q, Documents: docs}
	}
	for _, c := range []struct {
		name     string
		searches []agent.SearchCall
		pass     bool
	}{
		{"a first search of new words", []agent.SearchCall{call("Lawapa Academy", page)}, true},
		{"a name read in the results", []agent.SearchCall{call("Lawapa Academy", page), call("Pifo Boze", boze)}, true},
		{"articles and case ignored", []agent.SearchCall{call("Lawapa", page), call("the pifo BOZE!")}, true},
		{"the target's name again", []agent.SearchCall{call("Lawapa", page), call("V. Peda")}, true},
		{"a miscopied name", []agent.SearchCall{call("Lawapa Academy", page), call("Pifo Taze", boze)}, false},
		{"a word its own results show", []agent.SearchCall{call("Vike Peda", page), call("Wimi", boze)}, false},
		{"a word only a later result shows", []agent.SearchCall{call("Lawapa", page), call("Wimi"), call("Pifo Boze", boze)}, false},
		{"no searches", nil, true},
	} {
		if v := CheckGroundedSearches(c.searches, answers); v.Pass != c.pass || v.Filter != FilterGroundedSearches {
			t.Errorf("%s: %+v, want pass=%v", c.name, v, c.pass)
		}
	}
}

func TestCheckSearchCount(t *testing.T) {
	tests := []struct {
		queries     []string
		min, hops   int
		requireHops bool
		pass        bool
	}{
		{[]string{"x", "y"}, 2, 0, false, true},
		{[]string{"Lake Varn", "lake varn!", "the lake varn"}, 2, 0, false, false}, // one distinct query
		{[]string{"x", "y"}, 2, 3, false, true},                                    // hops ignored
		{[]string{"x", "y"}, 2, 3, true, false},                                    // hops required
		{[]string{"x", "y", "z"}, 2, 3, true, true},
		{nil, 0, 0, false, true},
	}
	for _, tt := range tests {
		if v := CheckSearchCount(tt.queries, tt.min, tt.hops, tt.requireHops); v.Pass != tt.pass {
			t.Errorf("CheckSearchCount(%q, %d, %d, %v) = %+v, want pass=%v", tt.queries, tt.min, tt.hops, tt.requireHops, v, tt.pass)
		}
	}
}

func TestCheckAnswerInQueries(t *testing.T) {
	if v := CheckAnswerInQueries([]string{"lake varn", "osk harbour"}, []string{"Osk"}); v.Pass {
		t.Errorf("answer searched for, but passed: %+v", v)
	}
	if v := CheckAnswerInQueries([]string{"lake varn", "harbour town"}, []string{"Osk"}); !v.Pass {
		t.Errorf("answer not searched, but failed: %+v", v)
	}
}

func TestNearDuplicates(t *testing.T) {
	questions := []string{
		"Which town lies south of Lake Varn?",      // 0
		"Which town lies south of lake Varn",       // 1: same words as 0 → J=1
		"",                                         // 2: failed extraction, never a duplicate
		"Who founded the harbour town?",            // 3
		"Which town lies just south of Lake Varn?", // 4: 7 words vs 6, J=6/7≈0.857 ≥ 0.8
		"Which town lies far north of Lake Varn?",  // 5: J(0)=5/8=0.625
	}
	want := []int{-1, 0, -1, -1, 0, -1}
	if got := NearDuplicates(questions, 0.8); !reflect.DeepEqual(got, want) {
		t.Errorf("NearDuplicates = %v, want %v", got, want)
	}
	if got := NearDuplicates(questions, 0); !reflect.DeepEqual(got, []int{-1, -1, -1, -1, -1, -1}) {
		t.Errorf("threshold 0 should disable the check, got %v", got)
	}
}

func TestNormalizeText(t *testing.T) {
	tests := map[string]string{
		"The Lake  Varn!": "lake varn",
		"An apple, a day": "apple day",
		"Éclair (pastry)": "éclair pastry",
		"":                "",
	}
	for in, want := range tests {
		if got := normalizeText(in); got != want {
			t.Errorf("normalizeText(%q) = %q, want %q", in, got, want)
		}
	}
}
