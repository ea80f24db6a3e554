// Package corpus reads document collections as streams of search.Document:
// Search-R1/FlashRAG JSONL (optionally gzip-compressed), directories of text
// files split into passages, and dictd dictionaries.
package corpus

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/ssp-project/ssp/internal/search"
)

// Formats a corpus can have.
const (
	FormatJSONL = "jsonl" // one JSON object per line: {"id","contents"} or {"id","title","text"}
	FormatDir   = "dir"   // a directory of .txt and .md files
	FormatDictd = "dictd" // NAME.index with NAME.dict.dz or NAME.dict
)

// Formats lists the accepted format names.
var Formats = []string{FormatJSONL, FormatDir, FormatDictd}

// Detect guesses the format of path from its kind and name.
func Detect(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("corpus %s: %w", path, err)
	}
	if st.IsDir() {
		return FormatDir, nil
	}
	name := strings.ToLower(path)
	switch {
	case strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".jsonl.gz"),
		strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".json.gz"):
		return FormatJSONL, nil
	case strings.HasSuffix(name, ".index"):
		return FormatDictd, nil
	}
	return "", fmt.Errorf("corpus %s: cannot tell the format from the name (want .jsonl, .jsonl.gz, .json, a directory or a dictd .index); use --format", path)
}

// Source is one corpus file or directory being read.
type Source struct {
	Path   string
	Format string
	total  int64
	read   atomic.Int64
}

// Open prepares path for reading in format ("" to detect it).
func Open(path, format string) (*Source, error) {
	if format == "" {
		f, err := Detect(path)
		if err != nil {
			return nil, err
		}
		format = f
	}
	s := &Source{Path: path, Format: format}
	switch format {
	case FormatJSONL, FormatDictd:
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("corpus %s: %w", path, err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("corpus %s: is a directory, not a %s file", path, format)
		}
		s.total = st.Size()
	case FormatDir:
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && isTextFile(p) {
				info, err := d.Info()
				if err != nil {
					return err
				}
				s.total += info.Size()
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("corpus %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("corpus %s: unknown format %q (want one of %s)", path, format, strings.Join(Formats, ", "))
	}
	return s, nil
}

// Size returns the number of input bytes the source will read.
func (s *Source) Size() int64 { return s.total }

// BytesRead returns how many input bytes have been consumed so far.
func (s *Source) BytesRead() int64 { return s.read.Load() }

// Docs streams the documents of the source. Errors name the file and line.
func (s *Source) Docs(ctx context.Context) iter.Seq2[search.Document, error] {
	return func(yield func(search.Document, error) bool) {
		var err error
		switch s.Format {
		case FormatJSONL:
			err = s.readJSONLFile(ctx, yield)
		case FormatDir:
			err = s.readDir(ctx, yield)
		case FormatDictd:
			err = s.readDictd(ctx, yield)
		}
		if err != nil {
			yield(search.Document{}, err)
		}
	}
}

// countingReader adds the bytes it reads to a counter, for progress reports.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (s *Source) readJSONLFile(ctx context.Context, yield func(search.Document, error) bool) error {
	f, err := os.Open(s.Path)
	if err != nil {
		return fmt.Errorf("corpus %s: %w", s.Path, err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(countingReader{f, &s.read}, 1<<20)
	if strings.HasSuffix(strings.ToLower(s.Path), ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("corpus %s: gzip: %w", s.Path, err)
		}
		defer gz.Close()
		r = gz
	}
	for doc, err := range ReadJSONL(ctx, r, s.Path) {
		if !yield(doc, err) || err != nil {
			return nil
		}
	}
	return nil
}

// jsonRecord is one corpus line; ID may be a JSON string or number.
type jsonRecord struct {
	ID       json.RawMessage `json:"id"`
	Contents *string         `json:"contents"`
	Title    *string         `json:"title"`
	Text     *string         `json:"text"`
}

// ReadJSONL streams documents from JSON Lines (or a JSON array of the same
// objects). Each object has "id" and either "contents" (the title in double
// quotes on the first line, then the text) or "title" and "text". name is
// used in error messages.
func ReadJSONL(ctx context.Context, r io.Reader, name string) iter.Seq2[search.Document, error] {
	return func(yield func(search.Document, error) bool) {
		br := bufio.NewReaderSize(r, 1<<16)
		first, err := peekNonSpace(br)
		if err == io.EOF {
			return
		}
		if err != nil {
			yield(search.Document{}, fmt.Errorf("corpus %s: %w", name, err))
			return
		}
		if first == '[' {
			readJSONArray(ctx, br, name, yield)
			return
		}
		for line := 1; ; line++ {
			raw, err := br.ReadBytes('\n')
			if len(bytes.TrimSpace(raw)) > 0 {
				if line%1024 == 0 && ctx.Err() != nil {
					yield(search.Document{}, ctx.Err())
					return
				}
				doc, perr := parseRecord(raw)
				if perr != nil {
					yield(search.Document{}, fmt.Errorf("corpus %s:%d: %w", name, line, perr))
					return
				}
				if !yield(doc, nil) {
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(search.Document{}, fmt.Errorf("corpus %s:%d: %w", name, line, err))
				return
			}
		}
	}
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		case 0xEF: // UTF-8 byte order mark
			if rest, err := br.Peek(2); err == nil && rest[0] == 0xBB && rest[1] == 0xBF {
				br.Discard(2)
				continue
			}
		}
		return b, br.UnreadByte()
	}
}

func readJSONArray(ctx context.Context, br *bufio.Reader, name string, yield func(search.Document, error) bool) {
	dec := json.NewDecoder(br)
	if _, err := dec.Token(); err != nil {
		yield(search.Document{}, fmt.Errorf("corpus %s: %w", name, err))
		return
	}
	for i := 0; dec.More(); i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			yield(search.Document{}, ctx.Err())
			return
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			yield(search.Document{}, fmt.Errorf("corpus %s: element %d: %w", name, i, err))
			return
		}
		doc, err := parseRecord(raw)
		if err != nil {
			yield(search.Document{}, fmt.Errorf("corpus %s: element %d: %w", name, i, err))
			return
		}
		if !yield(doc, nil) {
			return
		}
	}
	if _, err := dec.Token(); err != nil {
		yield(search.Document{}, fmt.Errorf("corpus %s: unterminated array: %w", name, err))
	}
}

func parseRecord(raw []byte) (search.Document, error) {
	var rec jsonRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return search.Document{}, err
	}
	var doc search.Document
	switch {
	case len(rec.ID) == 0 || string(rec.ID) == "null":
		return doc, fmt.Errorf(`missing "id"`)
	case rec.ID[0] == '"':
		if err := json.Unmarshal(rec.ID, &doc.ID); err != nil {
			return doc, fmt.Errorf(`"id": %w`, err)
		}
	case rec.ID[0] == '-' || rec.ID[0] >= '0' && rec.ID[0] <= '9':
		doc.ID = string(rec.ID)
	default:
		return doc, fmt.Errorf(`"id" must be a string or a number, got %s`, rec.ID)
	}
	switch {
	case rec.Contents != nil:
		doc.Contents = *rec.Contents
	case rec.Text != nil:
		title := ""
		if rec.Title != nil {
			title = *rec.Title
		}
		doc.Contents = JoinContents(title, *rec.Text)
	default:
		return doc, fmt.Errorf(`document %q has neither "contents" nor "text"`, doc.ID)
	}
	return doc, nil
}

// JoinContents builds the Search-R1 contents field: the title in double
// quotes on the first line, then the text.
func JoinContents(title, text string) string {
	return "\"" + title + "\"\n" + text
}
