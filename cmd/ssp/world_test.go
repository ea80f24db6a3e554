package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/world"
)

func TestWorldCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	worldDir := filepath.Join(dir, "world")
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"world", "gen"}, 2},
		{[]string{"world", "gen", "--out", worldDir, "--size", "huge"}, 2},
		{[]string{"world", "gen", "--out", worldDir, "--size", "tiny", "--seed", "3"}, 0},
		{[]string{"world", "bootstrap", "--world", worldDir}, 2},
		{[]string{"world", "bootstrap", "--world", filepath.Join(dir, "none"), "--out", filepath.Join(dir, "m")}, 1},
		{[]string{"world", "bootstrap", "--world", worldDir, "--out", filepath.Join(dir, "m"), "--heads", "3"}, 1},
	} {
		if code := dispatch(ctx, c.args); code != c.code {
			t.Errorf("ssp %v: exit %d, want %d", c.args, code, c.code)
		}
	}
	for _, f := range []string{world.Files.Corpus, world.Files.Seeds, world.Files.TrainQA, world.Files.Benchmark, world.Files.Info} {
		if st, err := os.Stat(filepath.Join(worldDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if testing.Short() {
		return
	}
	out := filepath.Join(dir, "model")
	args := []string{"world", "bootstrap", "--world", worldDir, "--out", out, "--vocab-size", "400", "--hidden", "16",
		"--layers", "1", "--heads", "2", "--kv-heads", "1", "--intermediate", "32", "--lm-steps", "1", "--protocol-steps", "1",
		"--batch-size", "2", "--seq-len", "32"}
	if code := dispatch(ctx, args); code != 0 {
		t.Fatalf("bootstrap: exit %d", code)
	}
	m, err := model.Load(out, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}
