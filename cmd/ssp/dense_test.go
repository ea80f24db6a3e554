package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/fixtures"
	"github.com/ssp-project/ssp/internal/search"
)

// TestDenseIndexCommands runs the dense path of the CLI: an index built
// with an encoder (and an HNSW graph), verified, queried with the three
// rankings, vectors added to an index built without them, and the
// errors a user meets on the way.
func TestDenseIndexCommands(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	encDir := fixtures.Asset(t, "scripts/fetch_encoders.sh", "encoders", "tiny-e5")
	ctx := context.Background()
	corpusFile := filepath.Join(t.TempDir(), "corpus.jsonl")
	var lines []string
	for i, topic := range strings.Fields("river bank money loan harbour bridge mountain valley poem song train station bread oven") {
		line, _ := json.Marshal(search.Document{ID: fmt.Sprint(i), Contents: fmt.Sprintf("%q\nA passage on the %s and the bank of things, number %d.", topic, topic, i)})
		lines = append(lines, string(line))
	}
	os.WriteFile(corpusFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out := filepath.Join(t.TempDir(), "idx")
	if err := runIndexBuild(ctx, []string{"--quiet", "--corpus", corpusFile, "--out", out, "--encoder", encDir, "--hnsw", "--vector-dtype", "float16"}); err != nil {
		t.Fatal(err)
	}
	verify, code := captureStdout(t, func() int { return exitCode(runIndexVerify(ctx, []string{"--index", out})) })
	if code != 0 || !strings.Contains(verify, "vectors of") || !strings.Contains(verify, "HNSW graph") {
		t.Errorf("index verify (exit %d) printed %q, want the vectors and their graph", code, verify)
	}
	for _, ranking := range []string{"bm25", "dense", "hybrid"} {
		printed, code := captureStdout(t, func() int {
			return exitCode(runSearchQuery(ctx, []string{"--index", out, "--ranking", ranking, "--topk", "3", "--json", "bank"}))
		})
		if code != 0 {
			t.Fatalf("search query --ranking %s failed", ranking)
		}
		var hits []search.Hit
		if err := json.Unmarshal([]byte(printed), &hits); err != nil || len(hits) == 0 {
			t.Fatalf("search query --ranking %s printed %q (%v)", ranking, printed, err)
		}
	}

	// An index built without vectors: dense ranking says how to add them;
	// --index adds them.
	plain := filepath.Join(t.TempDir(), "plain")
	if err := runIndexBuild(ctx, []string{"--quiet", "--corpus", corpusFile, "--out", plain}); err != nil {
		t.Fatal(err)
	}
	err := runSearchQuery(ctx, []string{"--index", plain, "--ranking", "dense", "bank"})
	if err == nil || !strings.Contains(err.Error(), "ssp index build --index") {
		t.Errorf("dense query without vectors: %v, want how to make them", err)
	}
	if err := runIndexBuild(ctx, []string{"--quiet", "--index", plain, "--encoder", encDir}); err != nil {
		t.Fatal(err)
	}
	if err := runSearchQuery(ctx, []string{"--index", plain, "--ranking", "hybrid", "--fusion", "weighted", "--dense-weight", "0.7", "bank"}); err != nil {
		t.Error(err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--index", plain, "--ranking", "semantic", "bank"}, "--ranking"},
		{[]string{"--index", plain, "--ranking", "hybrid", "--fusion", "max", "bank"}, "--fusion"},
		{[]string{"--index", plain, "--ranking", "hybrid", "--dense-weight", "2", "bank"}, "--dense-weight"},
		{[]string{"--index", plain, "--ranking", "dense", "--dense-search", "hnsw", "bank"}, "no HNSW graph"},
		{[]string{"--index", plain, "--ranking", "dense", "--query-encoder", fixtures.Shared(t, "hf", "qwen2"), "bank"}, "model_type"},
	} {
		if err := runSearchQuery(ctx, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("search query %q: %v, want an error naming %s", c.args, err, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--quiet", "--index", plain}, "--encoder"},
		{[]string{"--quiet", "--index", plain, "--encoder", t.TempDir()}, "config.json"},
		{[]string{"--quiet", "--index", plain, "--encoder", encDir, "--vector-dtype", "int4"}, "--vector-dtype"},
		{[]string{"--quiet", "--index", plain, "--encoder", encDir, "--out", out}, "--out"},
	} {
		if err := runIndexBuild(ctx, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("index build %q: %v, want an error naming %s", c.args, err, c.want)
		}
	}

	// A damaged vector file fails verify.
	vecs := filepath.Join(out, "dense", "vectors.bin")
	data, err := os.ReadFile(vecs)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	os.WriteFile(vecs, data, 0o644)
	if err := runIndexVerify(ctx, []string{"--index", out}); err == nil || !strings.Contains(err.Error(), "vectors.bin") {
		t.Errorf("verify of a damaged vector file: %v, want an error naming vectors.bin", err)
	}
}

func exitCode(err error) int {
	if err != nil {
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}
