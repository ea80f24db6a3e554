package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestModelImportCommandLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notModel := filepath.Join("..", "..", "internal", "gguf", "testdata", "quants.gguf")
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"no flags", []string{"model", "import"}, 2},
		{"no out", []string{"model", "import", "--gguf", notModel}, 2},
		{"bad dtype", []string{"model", "import", "--gguf", notModel, "--out", filepath.Join(dir, "a"), "--dtype", "int8"}, 2},
		{"stray argument", []string{"model", "import", "--gguf", notModel, "--out", filepath.Join(dir, "a"), "extra"}, 2},
		{"missing file", []string{"model", "import", "--gguf", filepath.Join(dir, "none.gguf"), "--out", filepath.Join(dir, "b")}, 1},
		{"not a model", []string{"model", "import", "--gguf", notModel, "--out", filepath.Join(dir, "c")}, 1},
	}
	for _, c := range cases {
		if code := dispatch(ctx, c.args); code != c.code {
			t.Errorf("%s: exit code %d, want %d", c.name, code, c.code)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed imports left %d entries in the output directory", len(entries))
	}
}
