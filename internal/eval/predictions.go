package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/score"
)

// predictionLine is one line of a predictions file.
type predictionLine struct {
	ID           string  `json:"id"`
	Prediction   *string `json:"prediction"`
	Response     *string `json:"response"`
	Turns        int     `json:"turns"`
	Searches     int     `json:"searches"`
	Tokens       int     `json:"tokens"`
	FinishReason string  `json:"finish_reason"`
}

var finishReasons = map[string]bool{"": true, FinishAnswer: true, FinishNoAnswer: true, FinishTurnLimit: true, FinishLength: true, FinishFormatError: true}

// ReadPredictions reads a predictions JSONL file keyed by example id. A line
// with "prediction" gives the answer directly; one with only "response" has
// its answer extracted from the last <answer> tag.
func ReadPredictions(path string) (map[string]Trajectory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("predictions: %w", err)
	}
	defer f.Close()
	out := map[string]Trajectory{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var p predictionLine
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		switch {
		case p.ID == "":
			return nil, fmt.Errorf("%s:%d: missing id", path, n)
		case p.Prediction == nil && p.Response == nil:
			return nil, fmt.Errorf("%s:%d: needs prediction or response", path, n)
		case !finishReasons[p.FinishReason]:
			return nil, fmt.Errorf("%s:%d: unknown finish_reason %q", path, n, p.FinishReason)
		}
		if _, dup := out[p.ID]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate id %q", path, n, p.ID)
		}
		t := Trajectory{ID: p.ID, Turns: p.Turns, Searches: p.Searches, Tokens: p.Tokens, FinishReason: p.FinishReason}
		if p.Response != nil {
			t.Response = *p.Response
		}
		if p.Prediction != nil {
			t.Prediction = *p.Prediction
		} else if a, ok := score.ExtractAnswer(t.Response); ok {
			t.Prediction = a
		} else if t.FinishReason == "" {
			t.FinishReason = FinishNoAnswer
		}
		if t.FinishReason == "" {
			t.FinishReason = FinishAnswer
		}
		out[p.ID] = t
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// PredictionSolver answers from precomputed trajectories; an example with
// none is an error naming it.
func PredictionSolver(preds map[string]Trajectory) SolveFunc {
	return func(ctx context.Context, batch []dataset.Example) ([]Trajectory, error) {
		out := make([]Trajectory, 0, len(batch))
		for _, e := range batch {
			t, ok := preds[e.ID]
			if !ok {
				return nil, fmt.Errorf("no prediction for example %q", e.ID)
			}
			out = append(out, t)
		}
		return out, nil
	}
}
