package corpus

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"

	"github.com/ssp-project/ssp/internal/search"
)

// dictdDigits is dictd's base64 alphabet; offsets and lengths in a .index
// file are numbers written in base 64 with these digits, most significant first.
const dictdDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func decodeDictdNumber(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty number")
	}
	if len(s) > 10 {
		return 0, fmt.Errorf("number %q too long", s)
	}
	var v int64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(dictdDigits, s[i])
		if d < 0 {
			return 0, fmt.Errorf("bad base64 digit %q in %q", s[i], s)
		}
		v = v*64 + int64(d)
	}
	return v, nil
}

// readDictd reads NAME.index and the entry text from NAME.dict.dz or NAME.dict.
func (s *Source) readDictd(ctx context.Context, yield func(search.Document, error) bool) error {
	base := strings.TrimSuffix(s.Path, ".index")
	var dict []byte
	var dictPath string
	var err error
	for _, cand := range []string{base + ".dict.dz", base + ".dict"} {
		dictPath = cand
		dict, err = readDictFile(cand)
		if !os.IsNotExist(err) {
			break
		}
	}
	if err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("corpus %s: neither %s.dict.dz nor %s.dict exists", s.Path, base, base)
		}
		return fmt.Errorf("corpus %s: %w", dictPath, err)
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return fmt.Errorf("corpus %s: %w", s.Path, err)
	}
	defer f.Close()
	name := strings.TrimSuffix(baseName(s.Path), ".index")
	for doc, err := range ReadDictd(ctx, countingReader{f, &s.read}, s.Path, dict, name) {
		if !yield(doc, err) || err != nil {
			return nil
		}
	}
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// readDictFile reads a dictionary body; .dz files are dictzip, which is
// gzip with a random-access table in an extra field, so a plain gzip reader
// decompresses them whole.
func readDictFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !strings.HasSuffix(path, ".dz") {
		return io.ReadAll(f)
	}
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, err
	}
	defer gz.Close()
	return io.ReadAll(gz)
}

// ReadDictd streams the entries of a dictd index over the dictionary body
// dict. Each entry becomes a document titled by its headword — as the
// entry's first line spells it when that line is the headword in another
// case, since dictfmt lower-cases the index — with ID
// "name:headword" ("name:headword#k" for the k-th repeat of a headword).
// dictd's own metadata entries (headwords starting "00-database-" or
// "00database") are skipped. indexName is used in error messages.
func ReadDictd(ctx context.Context, index io.Reader, indexName string, dict []byte, name string) iter.Seq2[search.Document, error] {
	return func(yield func(search.Document, error) bool) {
		seen := map[string]int{}
		br := bufio.NewReaderSize(index, 1<<16)
		for line := 1; ; line++ {
			raw, err := br.ReadString('\n')
			if trimmed := strings.TrimRight(raw, "\r\n"); trimmed != "" {
				if line%1024 == 0 && ctx.Err() != nil {
					yield(search.Document{}, ctx.Err())
					return
				}
				doc, perr := parseDictdLine(trimmed, dict, name, seen)
				if perr != nil {
					yield(search.Document{}, fmt.Errorf("corpus %s:%d: %w", indexName, line, perr))
					return
				}
				if doc.ID != "" && !yield(doc, nil) {
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(search.Document{}, fmt.Errorf("corpus %s:%d: %w", indexName, line, err))
				return
			}
		}
	}
}

// parseDictdLine returns the document of one index line, or a zero document
// for metadata entries.
func parseDictdLine(line string, dict []byte, name string, seen map[string]int) (search.Document, error) {
	parts := strings.Split(line, "\t")
	if len(parts) < 3 {
		return search.Document{}, fmt.Errorf("want headword<TAB>offset<TAB>length, got %d fields", len(parts))
	}
	head := parts[0]
	off, err := decodeDictdNumber(parts[1])
	if err != nil {
		return search.Document{}, fmt.Errorf("offset: %w", err)
	}
	n, err := decodeDictdNumber(parts[2])
	if err != nil {
		return search.Document{}, fmt.Errorf("length: %w", err)
	}
	if off+n > int64(len(dict)) {
		return search.Document{}, fmt.Errorf("entry %q at %d+%d runs past the end of the dictionary (%d bytes)", head, off, n, len(dict))
	}
	if head == "" {
		return search.Document{}, fmt.Errorf("empty headword")
	}
	if strings.HasPrefix(head, "00-database-") || strings.HasPrefix(head, "00database") {
		return search.Document{}, nil
	}
	id := name + ":" + head
	seen[head]++
	if k := seen[head]; k > 1 {
		id += fmt.Sprintf("#%d", k)
	}
	text := string(bytes.TrimSpace(dict[off : off+n]))
	// dictfmt lower-cases the index's headwords for lookup; the entry's
	// first line usually spells the headword as the dictionary does
	// ("capital of France"), so the title takes that spelling.
	title := head
	if first, _, _ := strings.Cut(text, "\n"); strings.EqualFold(strings.TrimSpace(first), head) {
		title = strings.TrimSpace(first)
	}
	return search.Document{ID: id, Contents: JoinContents(title, text)}, nil
}
