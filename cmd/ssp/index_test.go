package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestIndexCommands(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "idx")
	td := "../../internal/corpus/testdata/"
	if err := runIndexBuild(ctx, []string{"--quiet", "--corpus", td + "wiki.jsonl", td + "tiny.index", "--out", out, "--k1", "1.2"}); err != nil {
		t.Fatal(err)
	}
	if err := runIndexVerify(ctx, []string{"--index", out}); err != nil {
		t.Fatal(err)
	}
	if err := runSearchQuery(ctx, []string{"--index", out, "--topk", "2", "bank", "--json", "zebra"}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--out", out},
		{"--corpus", td + "wiki.jsonl"},
		{"--corpus", td + "wiki.jsonl", "--out", out, "--format", "csv"},
		{"--corpus", td + "wiki.jsonl", "--out", out, "--k1", "x"},
	} {
		if err := runIndexBuild(ctx, args); !errors.Is(err, errUsage) {
			t.Errorf("index build %q: err = %v, want a usage error", args, err)
		}
	}
	if err := runSearchQuery(ctx, []string{"--index", out}); !errors.Is(err, errUsage) {
		t.Errorf("query without text: err = %v", err)
	}
	if err := runSearchQuery(ctx, []string{"--index", filepath.Join(out, "missing"), "q"}); err == nil {
		t.Error("query on a missing index succeeded")
	}
}
