package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDataImportAndEval(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "eu.jsonl")
	quiz := "../../internal/dataset/testdata/bsdquiz/europe"
	if err := runDataImport(ctx, []string{"--format", "bsdgames", quiz, "--out", data}); err != nil {
		t.Fatal(err)
	}
	preds := filepath.Join(dir, "p.jsonl")
	os.WriteFile(preds, []byte(`{"id":"bsdquiz-europe-5-1","response":"<answer>Wien</answer>"}`+"\n"), 0o644)
	run := filepath.Join(dir, "run")
	// Only one prediction for twelve questions: the run must fail and leave nothing.
	if err := runEval(ctx, []string{"--predictions", preds, "--data", data, "--out", run}); err == nil {
		t.Fatal("missing predictions accepted")
	}
	if _, err := os.Stat(run); err == nil {
		t.Fatal("failed run left a directory")
	}
	// The fifth question (Austria) alone: select it with a one-line data file.
	one := filepath.Join(dir, "one.jsonl")
	all, _ := os.ReadFile(data)
	os.WriteFile(one, []byte(strings.Split(string(all), "\n")[4]+"\n"), 0o644)
	if err := runEval(ctx, []string{"--predictions", preds, "--data", one, "--out", run}); err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(filepath.Join(run, "metrics.json"))
	if err != nil || !strings.Contains(string(m), `"em": 1`) {
		t.Fatalf("metrics.json: %s %v", m, err)
	}
	if err := runEvalCompare(ctx, []string{run, run}); err != nil {
		t.Fatal(err)
	}
}

func TestEvalUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"--data", "x.jsonl", "--out", "r"},
		{"--predictions", "p", "--model", "m", "--data", "x", "--out", "r"},
		{"--predictions", "p", "--data", "x"},
		{"--predictions", "p", "--data", "x", "--out", "r", "--judge-url", "http://x"},
		{"--predictions", "p", "--data", "x", "--out", "r", "--limit", "-3"},
		{"--predictions", "p", "--data", "x", "--out", "r", "--batch", "0"},
	} {
		if err := runEval(ctx, args); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want usage error", args, err)
		}
	}
	if err := runDataImport(ctx, []string{"--format", "csv", "f", "--out", "o"}); !errors.Is(err, errUsage) {
		t.Errorf("bad format: %v", err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "d.jsonl")
	os.WriteFile(data, []byte(`{"id":"1","question":"q","golden_answers":["a"],"data_source":"s"}`+"\n"), 0o644)
	err := runEval(ctx, []string{"--model", "m", "--data", data, "--out", filepath.Join(dir, "r")})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--index or --retriever") {
		t.Errorf("--model without --index: %v", err)
	}
}
