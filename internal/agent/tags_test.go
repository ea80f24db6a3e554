package agent

import (
	"strings"
	"testing"
)

func TestLastTagBody(t *testing.T) {
	tests := []struct {
		text, tag string
		want      string
		ok        bool
	}{
		{"<search>a</search>", "search", "a", true},
		{"<think>x</think><search> first </search> then <search>second</search>", "search", "second", true},
		{"<search>a</search><search>unterminated", "search", "a", true},
		{"<search><search>inner</search>", "search", "inner", true},
		{"no tags at all", "search", "", false},
		{"</search><search>", "search", "", false},
		{"<search></search>", "search", "", true},
		{"<answer>Paris</answer>", "search", "", false},
	}
	for _, tt := range tests {
		got, ok := LastTagBody(tt.text, tt.tag)
		if got != tt.want || ok != tt.ok {
			t.Errorf("LastTagBody(%q, %q) = %q, %v; want %q, %v", tt.text, tt.tag, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFirstTagBody(t *testing.T) {
	tests := []struct {
		text, tag string
		want      string
		ok        bool
	}{
		{"<question>Who?</question><question>Second?</question>", "question", "Who?", true},
		{"<question>\n Who wrote it? \n</question>", "question", "Who wrote it?", true},
		{"<question>never closed", "question", "", false},
		{"</question>late<question>", "question", "", false},
	}
	for _, tt := range tests {
		got, ok := FirstTagBody(tt.text, tt.tag)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FirstTagBody(%q, %q) = %q, %v; want %q, %v", tt.text, tt.tag, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzTagParsers(f *testing.F) {
	for _, s := range []string{
		"<search>q</search>", "<search>a</search><search>b</search>", "</search><search>",
		"<search><search>x</search></search>", "<answer>\u00e9</answer>", "<search>", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, parse := range []func(string, string) (string, bool){LastTagBody, FirstTagBody} {
			body, ok := parse(text, "search")
			if !ok {
				if body != "" {
					t.Fatalf("body %q reported without a tag pair", body)
				}
				continue
			}
			if !strings.Contains(text, body) {
				t.Fatalf("body %q is not part of %q", body, text)
			}
			if strings.Contains(body, "</search>") {
				t.Fatalf("body %q contains a closing tag", body)
			}
		}
		// Both parsers agree on whether a complete pair exists.
		_, lastOK := LastTagBody(text, "search")
		_, firstOK := FirstTagBody(text, "search")
		if lastOK != firstOK {
			t.Fatalf("LastTagBody ok=%v, FirstTagBody ok=%v for %q", lastOK, firstOK, text)
		}
	})
}
