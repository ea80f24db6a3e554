package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportCommand writes the report of a small run: every chart is
// drawn, the held-out chart says "no data" when the run did not validate,
// a torn last line is ignored, and provenance and config are included.
func TestReportCommand(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	os.MkdirAll(run, 0o755)
	os.WriteFile(filepath.Join(run, "metrics.jsonl"), []byte(`{"step":1,"proposer_reward":-1,"solver_reward":0.25,"valid_question_rate":0.5,"rag_pass_rate":0.5,"solver_accuracy":0.25,"solver_groups":4,"solver_groups_informative":1,"tokens_generated":600,"step_seconds":30}
{"step":2,"proposer_reward":0.5,"solver_reward":0.5,"valid_question_rate":0.75,"rag_pass_rate":null,"solver_accuracy":0.5,"tokens_generated":900,"step_seconds":30}
{"step":3,"proposer_rew`), 0o644)
	os.WriteFile(filepath.Join(run, "provenance.jsonl"), []byte(`{"command":"ssp train --steps 2"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(run, "config.yaml"), []byte("run:\n  steps: 2\n"), 0o644)
	if err := runReport(context.Background(), []string{run}); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(run, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if n := strings.Count(s, "<svg"); n != 5 {
		t.Errorf("%d charts, want 5", n)
	}
	if n := strings.Count(s, ">no data<"); n != 1 {
		t.Errorf("%d charts say no data, want 1 (the held-out benchmark)", n)
	}
	// The share of questions with rewards that differ is drawn (1/4 at
	// step 1).
	if !strings.Contains(s, "questions with rewards that differ") {
		t.Error("the solver chart lacks the share of questions whose rewards differ")
	}
	// Tokens/s of step 2: 900/30 = 30, drawn; the torn step 3 is not.
	if !strings.Contains(s, "2 steps logged") || !strings.Contains(s, "ssp train --steps 2") || !strings.Contains(s, "steps: 2") {
		t.Errorf("report lacks the step count, provenance or config:\n%s", s)
	}
	if err := runReport(context.Background(), []string{filepath.Join(run, "none")}); err == nil {
		t.Error("a directory without metrics.jsonl was accepted")
	}
	if err := runReport(context.Background(), nil); err == nil {
		t.Error("no run directory was accepted")
	}
}
