package tokenizer

import (
	"strings"
	"testing"
)

// TestTextStream feeds a byte-per-token decoder a text with characters of
// two to four UTF-8 bytes: the pieces are valid text whose concatenation
// is the text, and nothing is returned for a token that ends inside a
// character.
//
// Mutation seen to fail it: returning text ending in U+FFFD from Add.
func TestTextStream(t *testing.T) {
	const text = "Zürich → 東京 🚀 ok"
	decode := func(ids []int32) string {
		b := make([]byte, len(ids))
		for i, id := range ids {
			b[i] = byte(id)
		}
		return lossyUTF8(b)
	}
	s := NewTextStream(decode)
	var got strings.Builder
	for i := 0; i < len(text); i++ {
		piece := s.Add(int32(text[i]))
		if strings.Contains(piece, "\uFFFD") {
			t.Fatalf("byte %d: piece %q holds a cut character", i, piece)
		}
		got.WriteString(piece)
	}
	got.WriteString(s.Flush())
	if got.String() != text {
		t.Errorf("pieces make %q, want %q", got.String(), text)
	}

	cut := NewTextStream(decode)
	cut.Add(0xE6) // the first byte of 東
	if rest := cut.Flush(); rest != "\uFFFD" {
		t.Errorf("flush of a cut character: %q, want U+FFFD", rest)
	}
}
