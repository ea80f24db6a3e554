package corpus

import (
	"context"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ssp-project/ssp/internal/search"
)

// PassageWords is the passage length, in words, of text files split into
// documents (Search-R1's wiki-18 passages are about 100 words).
const PassageWords = 100

func isTextFile(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".txt", ".md":
		return true
	}
	return false
}

// readDir walks the directory in lexical order and splits each .txt/.md file
// into passages.
func (s *Source) readDir(ctx context.Context, yield func(search.Document, error) bool) error {
	stopped := false
	err := filepath.WalkDir(s.Path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isTextFile(p) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s.read.Add(int64(len(data)))
		if !utf8.Valid(data) {
			return fmt.Errorf("%s: not valid UTF-8 text", p)
		}
		rel, err := filepath.Rel(s.Path, p)
		if err != nil {
			return err
		}
		for doc := range SplitPassages(filepath.ToSlash(rel), string(data), PassageWords) {
			if !yield(doc, nil) {
				stopped = true
				return fs.SkipAll
			}
		}
		return nil
	})
	if err != nil && !stopped {
		return fmt.Errorf("corpus %s: %w", s.Path, err)
	}
	return nil
}

// SplitPassages cuts text into passages of at most words words each. The
// title of every passage is the file name without extension; IDs are
// "relPath#n" with n counting from 0, so they stay the same across rebuilds
// of an unchanged file.
func SplitPassages(relPath, text string, words int) iter.Seq[search.Document] {
	return func(yield func(search.Document) bool) {
		base := filepath.Base(filepath.FromSlash(relPath))
		title := strings.TrimSuffix(base, filepath.Ext(base))
		fields := strings.Fields(text)
		for n, i := 0, 0; i < len(fields); n, i = n+1, i+words {
			chunk := fields[i:min(i+words, len(fields))]
			doc := search.Document{
				ID:       relPath + "#" + strconv.Itoa(n),
				Contents: JoinContents(title, strings.Join(chunk, " ")),
			}
			if !yield(doc) {
				return
			}
		}
	}
}
