package dataset

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxAliases bounds the expansion of one quiz field; a few files combine
// enough optional parts to produce thousands of spellings otherwise.
const maxAliases = 256

// ExpandQuizField expands one field of a BSD quiz(6) file into every
// spelling it accepts: "{x}" is optional, "[a|b]" and top-level "a|b" are
// alternatives, and a backslash takes the next character literally.
func ExpandQuizField(field string) ([]string, error) {
	p := quizParser{s: field}
	out, err := p.alternatives(0)
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("unbalanced %q at offset %d in %q", p.s[p.pos], p.pos, field)
	}
	return dedupe(out), nil
}

type quizParser struct {
	s   string
	pos int
}

// alternatives parses "seq|seq|..." up to the closing byte (0: end of input).
func (p *quizParser) alternatives(closing byte) ([]string, error) {
	var out []string
	for {
		seq, err := p.sequence(closing)
		if err != nil {
			return nil, err
		}
		out = append(out, seq...)
		if len(out) > maxAliases {
			out = out[:maxAliases]
		}
		if p.pos < len(p.s) && p.s[p.pos] == '|' {
			p.pos++
			continue
		}
		return out, nil
	}
}

func (p *quizParser) sequence(closing byte) ([]string, error) {
	acc := []string{""}
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		var part []string
		switch {
		case c == '|' || (closing != 0 && c == closing):
			return acc, nil
		case c == '}' || c == ']':
			return nil, fmt.Errorf("unexpected %q at offset %d in %q", c, p.pos, p.s)
		case c == '{' || c == '[':
			p.pos++
			end := byte('}')
			if c == '[' {
				end = ']'
			}
			inner, err := p.alternatives(end)
			if err != nil {
				return nil, err
			}
			if p.pos >= len(p.s) || p.s[p.pos] != end {
				return nil, fmt.Errorf("missing %q in %q", end, p.s)
			}
			p.pos++
			part = inner
			if c == '{' {
				part = append([]string{""}, inner...)
			}
		case c == '\\' && p.pos+1 < len(p.s):
			part = []string{p.s[p.pos+1 : p.pos+2]}
			p.pos += 2
		default:
			part = []string{string(c)}
			p.pos++
		}
		next := make([]string, 0, len(acc)*len(part))
		for _, a := range acc {
			for _, b := range part {
				if len(next) < maxAliases {
					next = append(next, a+b)
				}
			}
		}
		acc = next
	}
	return acc, nil
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		x = strings.TrimSpace(x)
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// longest returns the longest spelling, the one with every optional part.
func longest(xs []string) string {
	best := ""
	for _, x := range xs {
		if len(x) > len(best) {
			best = x
		}
	}
	return best
}

// splitQuizFields splits a logical quiz line on ':' outside brackets and
// escapes.
func splitQuizFields(line string) []string {
	var fields []string
	depth, start := 0, 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ':':
			if depth == 0 {
				fields = append(fields, line[start:i])
				start = i + 1
			}
		}
	}
	return append(fields, line[start:])
}

// QuizCategories reads the names of a quiz file's fields from the quiz
// "index" file beside it (lines "PATH:cat0:cat1..."). It returns nil when
// the index has no entry for the file.
func QuizCategories(indexPath, quizPath string) ([]string, error) {
	f, err := os.Open(indexPath)
	if err != nil {
		return nil, fmt.Errorf("quiz index: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := splitQuizFields(sc.Text())
		if len(fields) > 1 && filepath.Base(fields[0]) == filepath.Base(quizPath) {
			names := make([]string, 0, len(fields)-1)
			for _, c := range fields[1:] {
				alts, err := ExpandQuizField(c)
				if err != nil || len(alts) == 0 {
					return nil, fmt.Errorf("quiz index %s: category %q: %v", indexPath, c, err)
				}
				names = append(names, longest(alts))
			}
			return names, nil
		}
	}
	return nil, sc.Err()
}

// ReadBSDQuiz turns a BSD quiz(6) data file into QA pairs: for each line,
// the first field is the clue and each later field an answer, with every
// accepted spelling as a gold alias. Lines ending in a backslash continue
// on the next line. categories names the fields (from QuizCategories); nil
// falls back to "field 1", "field 2", ...
func ReadBSDQuiz(ctx context.Context, path string, categories []string) ([]Example, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("quiz: %w", err)
	}
	name := filepath.Base(path)
	category := func(i int) string {
		if i < len(categories) {
			return categories[i]
		}
		return fmt.Sprintf("field %d", i+1)
	}
	var out []Example
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lineNo := i + 1
		line := lines[i]
		for strings.HasSuffix(line, "\\") && !strings.HasSuffix(line, "\\\\") && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + lines[i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		fields := splitQuizFields(line)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s:%d: want at least two ':'-separated fields", path, lineNo)
		}
		clues, err := ExpandQuizField(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, lineNo, err)
		}
		if len(clues) == 0 {
			return nil, fmt.Errorf("%s:%d: empty clue", path, lineNo)
		}
		clue := longest(clues)
		for j := 1; j < len(fields); j++ {
			golds, err := ExpandQuizField(fields[j])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: field %d: %w", path, lineNo, j+1, err)
			}
			if len(golds) == 0 {
				continue
			}
			out = append(out, Example{
				ID:            fmt.Sprintf("bsdquiz-%s-%d-%d", name, lineNo, j),
				Question:      fmt.Sprintf("In the %q quiz, the %s is %q. What is the %s?", name, category(0), clue, category(j)),
				GoldenAnswers: golds,
				DataSource:    "bsdgames-" + name,
				Hops:          1,
			})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("quiz " + path + ": no questions")
	}
	return out, nil
}
