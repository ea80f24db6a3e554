// Package dataset reads QA evaluation data into one JSONL format: one
// Example per line with an id, a question, its gold answer aliases, the
// source benchmark and, where known, the number of hops.
package dataset

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ssp-project/ssp/internal/outdir"
)

// Example is one evaluation question.
type Example struct {
	ID            string         `json:"id"`
	Question      string         `json:"question"`
	GoldenAnswers []string       `json:"golden_answers"`
	DataSource    string         `json:"data_source"`
	Hops          int            `json:"hops,omitempty"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

// Validate reports the first missing required field.
func (e Example) Validate() error {
	switch {
	case e.ID == "":
		return errors.New("missing id")
	case strings.TrimSpace(e.Question) == "":
		return errors.New("missing question")
	case len(e.GoldenAnswers) == 0:
		return errors.New("missing golden_answers")
	case e.DataSource == "":
		return errors.New("missing data_source")
	}
	return nil
}

// ReadJSONL reads examples in this package's JSONL format. Blank lines are
// skipped; a bad line is an error naming file and line.
func ReadJSONL(ctx context.Context, path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	var out []Example
	err = scanLines(ctx, f, func(n int, line []byte) error {
		var e Example
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// scanLines calls fn for each non-blank line, numbered from 1.
func scanLines(ctx context.Context, r io.Reader, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// WriteJSONL writes examples to path atomically (temp file, then rename;
// package outdir).
func WriteJSONL(path string, examples []Example) error {
	for i, e := range examples {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("dataset %s: example %d (%q): %w", path, i, e.ID, err)
		}
	}
	return outdir.WriteFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, e := range examples {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Read reads a data file in this package's JSONL format or, by extension,
// Search-R1 parquet.
func Read(ctx context.Context, path string) ([]Example, error) {
	if strings.HasSuffix(path, ".parquet") {
		return ReadSearchR1(ctx, path)
	}
	return ReadJSONL(ctx, path)
}

// stringList accepts a JSON string, number or list of them as answer aliases.
func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case float64, json.Number, int, int64, bool:
		return []string{fmt.Sprint(x)}, nil
	case []any:
		var out []string
		for _, y := range x {
			s, err := stringList(y)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	case []string:
		return x, nil
	}
	return nil, fmt.Errorf("answer of type %T is not a string or list", v)
}
