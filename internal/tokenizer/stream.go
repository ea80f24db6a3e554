package tokenizer

import "strings"

// TextStream turns token ids into text as they are generated. A character
// of several UTF-8 bytes may be split across tokens, and its first tokens
// decode to U+FFFD until the rest arrives; TextStream holds such a tail
// back, so that every piece it returns is final.
type TextStream struct {
	decode  func([]int32) string
	ids     []int32
	emitted int // bytes of decode(ids) already returned
}

// NewTextStream decodes with decode (a Tokenizer's Decode or
// DecodeSkipSpecial).
func NewTextStream(decode func([]int32) string) *TextStream {
	return &TextStream{decode: decode}
}

// Add appends a token and returns the text it completes ("" while a
// character is cut between tokens).
func (s *TextStream) Add(id int32) string {
	s.ids = append(s.ids, id)
	text := s.decode(s.ids)
	if strings.HasSuffix(text, "\uFFFD") || len(text) <= s.emitted {
		return ""
	}
	return s.take(text)
}

// Flush returns what is left, a character still cut included.
func (s *TextStream) Flush() string {
	text := s.decode(s.ids)
	if len(text) <= s.emitted {
		return ""
	}
	return s.take(text)
}

func (s *TextStream) take(text string) string {
	piece := text[s.emitted:]
	s.emitted = len(text)
	return piece
}
