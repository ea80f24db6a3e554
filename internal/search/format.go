package search

import (
	"strconv"
	"strings"
)

// FormatHits renders hits the way Search-R1 inserts them between
// <information> tags (its _passages2string): one line per hit,
// "Doc i(Title: <first line of contents>) <rest of contents>". The title is
// the raw first line, quotes included, because that is what models trained
// with Search-R1 have seen.
func FormatHits(hits []Hit) string {
	var b strings.Builder
	for i, h := range hits {
		title, text, _ := strings.Cut(h.Document.Contents, "\n")
		b.WriteString("Doc ")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString("(Title: ")
		b.WriteString(title)
		b.WriteString(") ")
		b.WriteString(text)
		b.WriteByte('\n')
	}
	return b.String()
}

// TruncateInformation bounds text inserted into a rollout: it returns s cut
// to its first maxChars characters (runes, never splitting one), or s itself
// when it is short enough or maxChars is not positive.
func TruncateInformation(s string, maxChars int) string {
	if maxChars <= 0 || len(s) <= maxChars {
		return s
	}
	n := 0
	for i := range s {
		if n == maxChars {
			return s[:i]
		}
		n++
	}
	return s
}
