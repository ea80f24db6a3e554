package main

import (
	"errors"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	good := map[string]int64{"1MiB": 1 << 20, "512KiB": 512 << 10, "2048": 2048, "1 GiB": 1 << 30, "3MB": 3e6, "10B": 10}
	for in, want := range good {
		got, err := parseByteSize(in)
		if err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1MiB", "MiB", "1.5MiB", "1TiB", "99999999GiB"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) accepted", bad)
		}
	}
}

func TestSearchServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--index", "x", "--max-body", "lots"},
		{"--index", "x", "extra"},
		{"--index", "x", "--topk", "0"},
		{"--index", "x", "--topk", "200"},
		{"--index", "x", "--concurrency", "0"},
		{"--index", "x", "--queue", "-1"},
		{"--index", "x", "--request-memory", "1KiB"},
		{"--index", "x", "--request-memory", "much"},
	} {
		err := runSearchServe(t.Context(), args)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	if err := runSearchServe(t.Context(), []string{"--index", t.TempDir()}); err == nil || errors.Is(err, errUsage) {
		t.Errorf("empty index dir: err = %v, want an index error", err)
	}
}
