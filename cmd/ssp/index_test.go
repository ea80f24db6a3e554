package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// TestIndexBuildRefusesOutBeforeReading gives an --out that the build
// would refuse and a corpus that cannot be read: the refusal of --out comes
// first, before any corpus is opened.
func TestIndexBuildRefusesOutBeforeReading(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "notes")
	os.Mkdir(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "todo.txt"), []byte("mine"), 0o644)
	err := runIndexBuild(context.Background(), []string{"--quiet", "--corpus", filepath.Join(dir, "missing.jsonl"), "--out", foreign})
	if err == nil || !strings.Contains(err.Error(), foreign) || strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("err = %v, want the refusal of %s before the corpus is opened", err, foreign)
	}
}
