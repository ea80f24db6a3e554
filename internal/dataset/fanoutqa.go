package dataset

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// fanOutQuestion is the part of a FanOutQA dev-set entry used here.
type fanOutQuestion struct {
	ID            string            `json:"id"`
	Question      string            `json:"question"`
	Answer        any               `json:"answer"`
	Decomposition []json.RawMessage `json:"decomposition"`
}

// ReadFanOutQA reads the FanOutQA dev JSON (a list of questions). Answers
// may be strings, numbers, lists or objects; all leaf values become gold
// aliases (object values in key order), which suits single-valued answers
// best: a list answer is scored per element, not as a whole.
func ReadFanOutQA(ctx context.Context, path string) ([]Example, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fanoutqa: %w", err)
	}
	var qs []fanOutQuestion
	if err := json.Unmarshal(data, &qs); err != nil {
		return nil, fmt.Errorf("fanoutqa %s: %w", path, err)
	}
	out := make([]Example, 0, len(qs))
	for i, q := range qs {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		golds := flattenAnswer(q.Answer)
		if q.ID == "" || q.Question == "" || len(golds) == 0 {
			return nil, fmt.Errorf("fanoutqa %s: entry %d (%q): needs id, question and a non-empty answer", path, i, q.ID)
		}
		out = append(out, Example{
			ID: "fanoutqa-" + q.ID, Question: q.Question, GoldenAnswers: golds, DataSource: "fanoutqa",
			Metadata: map[string]any{"subquestions": len(q.Decomposition)},
		})
	}
	return out, nil
}

func flattenAnswer(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			out = append(out, flattenAnswer(x[k])...)
		}
		return out
	case []any:
		var out []string
		for _, y := range x {
			out = append(out, flattenAnswer(y)...)
		}
		return out
	default:
		s, _ := stringList(x)
		return dedupe(s)
	}
}
