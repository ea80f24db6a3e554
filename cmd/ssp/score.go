package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/ssp-project/ssp/internal/score"
)

func init() {
	register(command{name: "score", summary: "score predictions against gold answers (EM, F1, SubEM)", run: runScore})
}

// scoreInput is one line of `ssp score --input`.
type scoreInput struct {
	Prediction    *string         `json:"prediction"`
	GoldenAnswers json.RawMessage `json:"golden_answers"`
}

func runScore(ctx context.Context, args []string) error {
	fs := newFlags("score", "--input F.jsonl   (lines {\"prediction\", \"golden_answers\"}; - reads stdin)")
	input := fs.String("input", "", "JSONL file of {\"prediction\": str, \"golden_answers\": [str]}; - for stdin")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *input == "" {
		return fmt.Errorf("%w: --input is required", errUsage)
	}
	var r io.Reader = os.Stdin
	name := "stdin"
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return err
		}
		defer f.Close()
		r, name = f, *input
	}
	return scoreLines(ctx, r, name, os.Stdout, os.Stderr)
}

func scoreLines(ctx context.Context, r io.Reader, name string, out, summary io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	w := bufio.NewWriter(out)
	defer w.Flush()
	var n int
	var sumEM, sumF1, sumSubEM float64
	for line := 1; sc.Scan(); line++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		var in scoreInput
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			return fmt.Errorf("%s:%d: %v", name, line, err)
		}
		if in.Prediction == nil {
			return fmt.Errorf("%s:%d: missing field \"prediction\"", name, line)
		}
		golds, err := parseGolds(in.GoldenAnswers)
		if err != nil {
			return fmt.Errorf("%s:%d: field \"golden_answers\": %v", name, line, err)
		}
		s := score.All(*in.Prediction, golds)
		b, _ := json.Marshal(s)
		w.Write(append(b, '\n'))
		n++
		sumEM += float64(s.EM)
		sumF1 += s.F1
		sumSubEM += float64(s.SubEM)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if n > 0 {
		fmt.Fprintf(summary, "n=%d em=%.4f f1=%.4f subem=%.4f\n", n, sumEM/float64(n), sumF1/float64(n), sumSubEM/float64(n))
	} else {
		fmt.Fprintln(summary, "n=0")
	}
	return nil
}

// parseGolds accepts a list of strings or a single string.
func parseGolds(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("missing")
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings, got %s", raw)
}
