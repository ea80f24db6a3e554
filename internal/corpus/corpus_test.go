package corpus

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/search"
)

func readAll(t *testing.T, path, format string) []search.Document {
	t.Helper()
	src, err := Open(path, format)
	if err != nil {
		t.Fatal(err)
	}
	var docs []search.Document
	for d, err := range src.Docs(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	if src.BytesRead() == 0 || src.BytesRead() > src.Size() && !strings.HasSuffix(path, ".gz") {
		t.Errorf("%s: read %d of %d bytes", path, src.BytesRead(), src.Size())
	}
	return docs
}

func TestReaders(t *testing.T) {
	wiki := []search.Document{
		{ID: "0", Contents: "\"Aaron\"\nAaron is a prophet, high priest, and the brother of Moses in the Abrahamic religions."},
		{ID: "1", Contents: "\"Aaron\"\nKnowledge of Aaron, along with his brother Moses, comes exclusively from religious texts."},
		{ID: "2", Contents: "\"Zürich\"\nZürich is the largest city in Switzerland."},
	}
	dictd := []search.Document{
		{ID: "tiny:apple", Contents: "\"apple\"\napple\n   n 1: fruit with red or yellow or green skin and sweet flesh"},
		{ID: "tiny:bank", Contents: "\"bank\"\nbank\n   n 1: sloping land beside a body of water"},
		{ID: "tiny:bank#2", Contents: "\"bank\"\nbank\n   n 2: a financial institution that accepts deposits"},
		{ID: "tiny:zebra", Contents: "\"zebra\"\nzebra\n   n 1: any of several fleet black-and-white striped African equines"},
	}
	plain := make([]search.Document, len(dictd))
	for i, d := range dictd {
		plain[i] = search.Document{ID: strings.Replace(d.ID, "tiny:", "plain:", 1), Contents: d.Contents}
	}
	for _, tc := range []struct {
		path, format string
		want         []search.Document
	}{
		{"testdata/wiki.jsonl", "", wiki},
		{"testdata/wiki.jsonl.gz", "", wiki},
		{"testdata/titletext.jsonl", "", []search.Document{
			{ID: "t1", Contents: "\"Paris\"\nParis is the capital of France."},
			{ID: "t2", Contents: "\"Berlin\"\nBerlin is the capital of Germany."},
		}},
		{"testdata/array.json", "", []search.Document{
			{ID: "a1", Contents: "\"A\"\nfirst"}, {ID: "a2", Contents: "\"B\"\nsecond"},
		}},
		{"testdata/tiny.index", "", dictd},
		{"testdata/plain.index", FormatDictd, plain},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got := readAll(t, tc.path, tc.format)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d docs %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("doc %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestReadDir(t *testing.T) {
	got := readAll(t, "testdata/notes", "")
	wantIDs := []string{"long story.txt#0", "long story.txt#1", "long story.txt#2", "sub/readme.md#0"}
	if len(got) != len(wantIDs) {
		t.Fatalf("got %d docs, want %d", len(got), len(wantIDs))
	}
	for i, d := range got {
		if d.ID != wantIDs[i] {
			t.Errorf("doc %d id %q, want %q", i, d.ID, wantIDs[i])
		}
	}
	if got[0].Title() != "long story" || len(strings.Fields(got[0].Text())) != 100 || len(strings.Fields(got[2].Text())) != 50 {
		t.Errorf("bad passage split: %q / %d words", got[0].Title(), len(strings.Fields(got[2].Text())))
	}
	if !strings.HasPrefix(got[1].Text(), "word100 ") || got[3].Title() != "readme" {
		t.Errorf("passage 1 %q, doc 3 title %q", got[1].Text()[:10], got[3].Title())
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	for _, tc := range []struct {
		path, format, want string
	}{
		{write("bad.jsonl", "{\"id\":\"1\",\"contents\":\"x\"}\n{\"id\":\"2\",\"contents\":\n"), "", "bad.jsonl:2"},
		{write("noid.jsonl", "{\"contents\":\"x\"}\n"), "", `noid.jsonl:1: missing "id"`},
		{write("notext.jsonl", "{\"id\":\"1\",\"title\":\"x\"}\n"), "", `notext.jsonl:1: document "1" has neither`},
		{write("badid.jsonl", "{\"id\":[1],\"contents\":\"x\"}\n"), "", `badid.jsonl:1: "id" must be`},
		{write("corpus.xml", "<x/>"), "", "corpus.xml: cannot tell the format"},
		{write("bad.jsonl.gz", "not gzip"), "", "bad.jsonl.gz: gzip"},
		{write("lonely.index", "a\tA\tB\n"), "", "neither"},
		{write("short.index", "apple\tA\n"), "", "short.index:1: want headword"},
		{write("digit.index", "apple\tA\t*\n"), FormatDictd, "digit.index:1: length: bad base64 digit"},
		{write("past.index", "apple\tA\tZZ\n"), "", "past.index:1: entry \"apple\" at 0+1625 runs past"},
		{write("x.jsonl", "{}"), "tsv", `unknown format "tsv"`},
	} {
		if strings.HasSuffix(tc.path, "short.index") || strings.HasSuffix(tc.path, "past.index") || strings.HasSuffix(tc.path, "digit.index") {
			write(strings.TrimSuffix(filepath.Base(tc.path), ".index")+".dict", "apple\n")
		}
		src, err := Open(tc.path, tc.format)
		if err == nil {
			for _, e := range src.Docs(context.Background()) {
				if e != nil {
					err = e
					break
				}
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", filepath.Base(tc.path), err, tc.want)
		}
	}
}

// TestDictdTitleCase checks that a title keeps the dictionary's spelling of
// the headword (the entry's first line) where the index lower-cased it,
// and falls back to the index headword when the first line is other text.
func TestDictdTitleCase(t *testing.T) {
	entries := []string{"capital of France\n  n 1: Paris\n", "apple\n  n 1: a fruit\n", "Some gloss without a headword line\n"}
	var dict, index strings.Builder
	heads := []string{"capital of france", "apple", "zebra"}
	for i, e := range entries {
		fmt.Fprintf(&index, "%s\t%s\t%s\n", heads[i], encodeDictdNumber(int64(dict.Len())), encodeDictdNumber(int64(len(e))))
		dict.WriteString(e)
	}
	var titles []string
	for doc, err := range ReadDictd(context.Background(), strings.NewReader(index.String()), "wn.index", []byte(dict.String()), "wn") {
		if err != nil {
			t.Fatal(err)
		}
		title, _, _ := strings.Cut(doc.Contents, "\n")
		titles = append(titles, doc.ID+" "+title)
	}
	want := []string{`wn:capital of france "capital of France"`, `wn:apple "apple"`, `wn:zebra "zebra"`}
	if strings.Join(titles, "|") != strings.Join(want, "|") {
		t.Errorf("titles %q, want %q", titles, want)
	}
}

// encodeDictdNumber writes n in dictd's base64 digits.
func encodeDictdNumber(n int64) string {
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	if n == 0 {
		return "A"
	}
	var b []byte
	for ; n > 0; n /= 64 {
		b = append([]byte{digits[n%64]}, b...)
	}
	return string(b)
}

func TestDictdNumbers(t *testing.T) {
	for s, want := range map[string]int64{"A": 0, "B": 1, "/": 63, "BA": 64, "Bx": 113, "BAA": 4096} {
		got, err := decodeDictdNumber(s)
		if err != nil || got != want {
			t.Errorf("decode %q = %d, %v; want %d", s, got, err, want)
		}
	}
}

func FuzzReadJSONL(f *testing.F) {
	for _, name := range []string{"testdata/wiki.jsonl", "testdata/titletext.jsonl", "testdata/array.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{\"id\":1e3,\"text\":null}\n[\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for doc, err := range ReadJSONL(context.Background(), bytes.NewReader(data), "fuzz.jsonl") {
			if err != nil {
				if !strings.Contains(err.Error(), "fuzz.jsonl") {
					t.Fatalf("error without file name: %v", err)
				}
				return
			}
			if doc.ID == "" && !bytes.Contains(data, []byte(`""`)) {
				t.Fatalf("empty id from %q", data)
			}
		}
	})
}

func FuzzReadDictd(f *testing.F) {
	idx, _ := os.ReadFile("testdata/plain.index")
	dict, _ := os.ReadFile("testdata/plain.dict")
	f.Add(idx, dict)
	f.Add([]byte("x\t/////\tA\n"), []byte("abc"))
	f.Fuzz(func(t *testing.T, index, dict []byte) {
		for doc, err := range ReadDictd(context.Background(), bytes.NewReader(index), "fuzz.index", dict, "fuzz") {
			if err != nil {
				if !strings.Contains(err.Error(), "fuzz.index:") {
					t.Fatalf("error without file and line: %v", err)
				}
				return
			}
			if !strings.HasPrefix(doc.ID, "fuzz:") {
				t.Fatalf("bad id %q", doc.ID)
			}
		}
	})
}

func FuzzSplitPassages(f *testing.F) {
	f.Add("one two three", 2)
	f.Add("", 1)
	f.Fuzz(func(t *testing.T, text string, words int) {
		if words <= 0 || words > 1000 {
			return
		}
		n := 0
		for doc := range SplitPassages("dir/f.txt", text, words) {
			if doc.Title() != "f" || len(strings.Fields(doc.Text())) > words {
				t.Fatalf("bad passage %+v", doc)
			}
			n += len(strings.Fields(doc.Text()))
		}
		if n != len(strings.Fields(text)) {
			t.Fatalf("passages hold %d words, text has %d", n, len(strings.Fields(text)))
		}
	})
}
