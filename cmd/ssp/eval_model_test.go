package main

import (
	"context"
	"testing"

	"github.com/ssp-project/ssp/internal/builtin"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/eval"
)

// TestModelSolver runs the built-in model through the solver loop on two
// benchmark questions and checks the trajectories are well formed.
func TestModelSolver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a model")
	}
	t.Setenv("GOMLX_BACKEND", "go")
	p, err := builtin.Prepare(context.Background(), t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	solve, closeFn, err := newModelSolver(context.Background(), modelSolverOptions{
		Model: p.Model, Index: p.Index, MaxTurns: 2, MaxTokensPerTurn: 8, MaxResponseTokens: 64, TopK: 2, MaxInformationChars: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	batch := []dataset.Example{{ID: "a", Question: "Who wrote it?", GoldenAnswers: []string{"x"}}, {ID: "b", Question: "Where?", GoldenAnswers: []string{"y"}}}
	trajs, err := solve(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(trajs) != 2 || trajs[0].ID != "a" || trajs[1].ID != "b" {
		t.Fatalf("trajectories %+v", trajs)
	}
	for _, tr := range trajs {
		if tr.Tokens == 0 || tr.Tokens > 16 || tr.Turns < 1 || tr.Turns > 2 {
			t.Errorf("trajectory %+v outside the bounds", tr)
		}
		switch tr.FinishReason {
		case eval.FinishAnswer, eval.FinishNoAnswer, eval.FinishTurnLimit, eval.FinishLength, eval.FinishFormatError:
		default:
			t.Errorf("finish reason %q", tr.FinishReason)
		}
	}
	if _, _, err := newModelSolver(context.Background(), modelSolverOptions{Model: p.Model}); err == nil {
		t.Error("a solver without --index or --retriever was accepted")
	}
}
