package search

import (
	"strconv"
	"strings"
	"unicode/utf8"
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

// VisibleHits returns the hits as far as TruncateInformation(FormatHits(hits),
// maxChars) shows them, so that whatever later reads a rollout's documents
// (the RAG check) sees what the policy saw: hits wholly past the cut are
// dropped and the hit the cut falls in keeps only the shown part of its
// contents. With maxChars not positive every hit is returned whole.
// FormatHits(VisibleHits(h, m)) starts with TruncateInformation(FormatHits(h), m)
// and adds at most the closing ") " and newline of the last, cut line.
func VisibleHits(hits []Hit, maxChars int) []Hit {
	if maxChars <= 0 {
		return hits
	}
	left := maxChars
	var out []Hit
	for i, h := range hits {
		title, text, hasText := strings.Cut(h.Document.Contents, "\n")
		prefix := utf8.RuneCountInString("Doc " + strconv.Itoa(i+1) + "(Title: ")
		nTitle, nText := utf8.RuneCountInString(title), utf8.RuneCountInString(text)
		line := prefix + nTitle + len(") ") + nText + len("\n")
		if line <= left {
			out = append(out, h)
			left -= line
			continue
		}
		k := left - prefix // characters of "title) text" shown
		if k <= 0 {
			break
		}
		switch {
		case k <= nTitle:
			h.Document.Contents = firstRunes(title, k)
		case !hasText || k <= nTitle+len(") "):
			h.Document.Contents = title
		default:
			h.Document.Contents = title + "\n" + firstRunes(text, k-nTitle-len(") "))
		}
		out = append(out, h)
		break
	}
	return out
}

// firstRunes returns the first n characters of s.
func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
