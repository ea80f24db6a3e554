package search

import (
	"fmt"
	"strings"
	"testing"
)

// searchR1Passages is Search-R1's _passages2string
// (search_r1/llm_agent/generation.py), transcribed line by line:
//
//	for idx, doc_item in enumerate(retrieval_result):
//	    content = doc_item['document']['contents']
//	    title = content.split("\n")[0]
//	    text = "\n".join(content.split("\n")[1:])
//	    format_reference += f"Doc {idx+1}(Title: {title}) {text}\n"
func searchR1Passages(contents []string) string {
	ref := ""
	for idx, content := range contents {
		lines := strings.Split(content, "\n")
		title := lines[0]
		text := strings.Join(lines[1:], "\n")
		ref += fmt.Sprintf("Doc %d(Title: %s) %s\n", idx+1, title, text)
	}
	return ref
}

func TestFormatHitsMatchesSearchR1(t *testing.T) {
	contents := []string{
		"\"Hamlet\"\nHamlet is a tragedy by William Shakespeare.",
		"\"Multi line\"\nfirst line\nsecond line",
		"no title line at all",
		"\"Empty text\"\n",
		"\"Ünïcode «quotes»\"\n東京 is the capital of Japan.",
		"",
		"\n\nleading blank lines",
	}
	var hits []Hit
	for i, c := range contents {
		hits = append(hits, Hit{Document: Document{ID: fmt.Sprint(i), Contents: c}, Score: float64(i)})
	}
	if got, want := FormatHits(hits), searchR1Passages(contents); got != want {
		t.Errorf("FormatHits:\n%s\nSearch-R1:\n%s", got, want)
	}
	if FormatHits(nil) != "" {
		t.Error("no hits should format as the empty string")
	}
}

func TestTruncateInformation(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"hello", 0, "hello"},
		{"hello", -1, "hello"},
		{"東京都", 2, "東京"},
		{"東京都", 3, "東京都"},
		{"a東", 1, "a"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		got := TruncateInformation(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("TruncateInformation(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
	long := strings.Repeat("é", 1000)
	if got := TruncateInformation(long, 10); got != strings.Repeat("é", 10) {
		t.Errorf("got %q", got)
	}
}

// TestVisibleHits: for every cut, the visible hits format to what the cut
// text showed (plus at most the closing ") " and newline of the cut line),
// or to less when the cut falls inside the next hit's "Doc N(Title: " header.
func TestVisibleHits(t *testing.T) {
	hits := []Hit{
		{Document: Document{ID: "1", Contents: "\"Hamlet\"\nHamlet is a tragedy by William Shakespeare."}},
		{Document: Document{ID: "2", Contents: "\"Multi line\"\nfirst line\nsecond line"}},
		{Document: Document{ID: "3", Contents: "no title line at all"}},
		{Document: Document{ID: "4", Contents: "\"Empty text\"\n"}},
		{Document: Document{ID: "5", Contents: "\"Ünïcode «quotes»\"\n東京 is the capital of Japan."}},
	}
	full := FormatHits(hits)
	n := len([]rune(full))
	for m := 1; m <= n+2; m++ {
		shown := TruncateInformation(full, m)
		vis := VisibleHits(hits, m)
		got := FormatHits(vis)
		for i, h := range vis {
			if h.Document.ID != hits[i].Document.ID {
				t.Fatalf("cut %d: hit %d is %q, want %q", m, i, h.Document.ID, hits[i].Document.ID)
			}
			if i < len(vis)-1 && h.Document != hits[i].Document {
				t.Fatalf("cut %d: hit %d before the cut was changed to %q", m, i, h.Document.Contents)
			}
		}
		switch {
		case strings.HasPrefix(got, shown):
			if extra := len([]rune(got)) - len([]rune(shown)); extra > 3 {
				t.Fatalf("cut %d: visible hits add %d characters: %q after %q", m, extra, got[len(shown):], shown)
			}
		case strings.HasPrefix(shown, got):
			header := "Doc " + string(rune('1'+len(vis))) + "(Title: "
			if rest := shown[len(got):]; !strings.HasPrefix(header, rest) {
				t.Fatalf("cut %d: visible hits lost %q, which is not a bare header", m, rest)
			}
		default:
			t.Fatalf("cut %d: visible hits show %q, the cut text is %q", m, got, shown)
		}
	}
	if got := VisibleHits(hits, 0); len(got) != len(hits) {
		t.Fatalf("no bound: %d hits", len(got))
	}
	if got := VisibleHits(hits, n); len(got) != len(hits) || got[4] != hits[4] {
		t.Fatalf("a bound the text fits: %+v", got)
	}
	cut := VisibleHits(hits[:1], len("Doc 1(Title: \"Hamlet\") Hamlet is"))
	if len(cut) != 1 || cut[0].Document.Contents != "\"Hamlet\"\nHamlet is" {
		t.Fatalf("cut inside the text: %+v", cut)
	}
}
