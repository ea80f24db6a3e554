package search

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatHitsGolden(t *testing.T) {
	hits := []Hit{
		{Document: Document{ID: "1", Contents: "\"Hamlet\"\nHamlet is a tragedy by William Shakespeare."}, Score: 12.5},
		{Document: Document{ID: "2", Contents: "\"Multi line\"\nfirst line\nsecond line"}},
		{Document: Document{ID: "3", Contents: "no title line at all"}},
		{Document: Document{ID: "4", Contents: "\"Empty text\"\n"}},
		{Document: Document{ID: "5", Contents: "\"Ünïcode «quotes»\"\n東京 is the capital of Japan."}},
	}
	got := FormatHits(hits)
	golden := filepath.Join("testdata", "format_hits.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("FormatHits:\n%s\nwant:\n%s", got, want)
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
