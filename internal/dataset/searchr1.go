package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// ReadSearchR1 reads Search-R1 style eval data from a .parquet or JSONL file.
func ReadSearchR1(ctx context.Context, path string) ([]Example, error) {
	var rows []map[string]any
	if strings.HasSuffix(path, ".parquet") {
		var err error
		rows, err = readParquetRows(path)
		if err != nil {
			return nil, err
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		defer f.Close()
		err = scanLines(ctx, f, func(n int, line []byte) error {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				return fmt.Errorf("%s:%d: %w", path, n, err)
			}
			m["\x00line"] = n
			rows = append(rows, m)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]Example, 0, len(rows))
	for i, m := range rows {
		where := fmt.Sprintf("%s: row %d", path, i)
		if n, ok := m["\x00line"].(int); ok {
			where = fmt.Sprintf("%s:%d", path, n)
		}
		e, err := searchR1Example(m, i)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func searchR1Example(m map[string]any, index int) (Example, error) {
	q, _ := m["question"].(string)
	if strings.TrimSpace(q) == "" {
		return Example{}, errors.New("field question is missing or empty")
	}
	src, _ := m["data_source"].(string)
	if src == "" {
		return Example{}, errors.New("field data_source is missing or empty")
	}
	var golds []string
	var err error
	if v, ok := m["golden_answers"]; ok && v != nil {
		if golds, err = stringList(v); err != nil {
			return Example{}, fmt.Errorf("field golden_answers: %w", err)
		}
	}
	if len(golds) == 0 {
		rm, _ := m["reward_model"].(map[string]any)
		gt, _ := rm["ground_truth"].(map[string]any)
		if golds, err = stringList(gt["target"]); err != nil {
			return Example{}, fmt.Errorf("field reward_model.ground_truth.target: %w", err)
		}
	}
	if len(golds) == 0 {
		return Example{}, errors.New("no answers in golden_answers or reward_model.ground_truth.target")
	}
	id := ""
	switch v := m["id"].(type) {
	case string:
		id = v
	case float64:
		id = strconv.FormatFloat(v, 'f', -1, 64)
	case int64:
		id = strconv.FormatInt(v, 10)
	}
	if id == "" {
		if ei, ok := m["extra_info"].(map[string]any); ok {
			if v, ok := ei["index"]; ok && v != nil {
				id = fmt.Sprint(v)
			}
		}
	}
	if id == "" {
		id = strconv.Itoa(index)
	}
	return Example{ID: src + "-" + id, Question: strings.TrimSpace(q), GoldenAnswers: golds, DataSource: src}, nil
}

// readParquetRows decodes every row of a parquet file into generic maps,
// whatever its schema, so that nested fields such as reward_model survive.
func readParquetRows(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	// A reader built from the file's own schema reconstructs each row into
	// a generic map, whatever columns the file has.
	r := parquet.NewReader(pf, pf.Schema())
	defer r.Close()
	rows := make([]map[string]any, 0, r.NumRows())
	for {
		m := map[string]any{}
		if err := r.Read(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("dataset %s: row %d: %w", path, len(rows), err)
		}
		rows = append(rows, m)
	}
	n := len(rows)
	// Round-trip through JSON so values take the shapes of JSON decoding
	// (lists as []any, numbers as float64) that the field readers expect.
	b, err := json.Marshal(rows[:n])
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("dataset %s: %w", path, err)
	}
	return out, nil
}
