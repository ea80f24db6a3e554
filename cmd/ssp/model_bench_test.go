package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/model"
)

func TestModelBenchRuns(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	small := []string{"--shape", "tiny", "--iters", "1", "--warmup", "1", "--json"}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"generate float32", []string{"--mode", "generate", "--batch", "3", "--prompt-len", "8", "--new-tokens", "5", "--dtype", "float32"}},
		{"generate bfloat16", []string{"--mode", "generate", "--batch", "2", "--prompt-len", "8", "--new-tokens", "4"}},
		{"train mixed precision", []string{"--mode", "train", "--batch", "2", "--seq-len", "32"}},
		{"train micro-batches, checkpointing", []string{"--mode", "train", "--batch", "2", "--seq-len", "16", "--dtype", "float32",
			"--micro-batch", "1", "--activation-checkpointing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"model", "bench"}, small...), tc.args...)
			out, code := captureStdout(t, func() int { return dispatch(context.Background(), args) })
			if code != 0 {
				t.Fatalf("exited %d: %s", code, out)
			}
			var r benchResult
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			mode := tc.args[1]
			if r.Impl != "ssp" || r.Mode != mode || r.Shape != "tiny" || r.Params != 106816 || r.Iters != 1 {
				t.Errorf("result %+v", r)
			}
			if !(r.TokensPerSec > 0) || !(r.SecondsPerIter > 0) || !(r.MFU > 0) || !(r.MFUWithAttention >= r.MFU) ||
				!(r.RooflineTokensPerSec > 0) || !(r.RooflineFraction > 0) {
				t.Errorf("figures %+v", r)
			}
			wantBound := map[string]string{"generate": "memory", "train": "compute"}[mode]
			if r.RooflineBound != wantBound {
				t.Errorf("roofline bound %q, want %q", r.RooflineBound, wantBound)
			}
			if mode == "train" && (r.SeqLen == 0 || r.Loss <= 0) || mode == "generate" && r.KVBytesPerStep <= 0 {
				t.Errorf("mode fields %+v", r)
			}
		})
	}
}

func TestModelBenchText(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	out, code := captureStdout(t, func() int {
		return dispatch(context.Background(), []string{"model", "bench", "--shape", "tiny", "--batch", "2",
			"--prompt-len", "4", "--new-tokens", "3", "--iters", "1", "--warmup", "0", "--dtype", "float32"})
	})
	if code != 0 || !strings.Contains(out, "tokens/s") || !strings.Contains(out, "roofline") {
		t.Errorf("exited %d, printed %q", code, out)
	}
}

// The presets must be configs the model package and transformers accept,
// with the dimensions the benchmark promises.
func TestModelBenchPrintConfig(t *testing.T) {
	for shape, want := range map[string][4]int{
		"smollm2-135m": {30, 576, 49152, 3},
		"qwen2.5-0.5b": {24, 896, 151936, 2},
		"tiny":         {2, 64, 512, 2},
	} {
		out, code := captureStdout(t, func() int {
			return dispatch(context.Background(), []string{"model", "bench", "--shape", shape, "--print-config"})
		})
		if code != 0 {
			t.Fatalf("%s: exited %d", shape, code)
		}
		cfg, err := model.ParseConfig([]byte(out))
		if err != nil {
			t.Fatalf("%s: %v", shape, err)
		}
		got := [4]int{cfg.NumHiddenLayers, cfg.HiddenSize, cfg.VocabSize, cfg.NumKeyValueHeads}
		if got != want || !cfg.TieWordEmbeddings {
			t.Errorf("%s: layers, hidden, vocab, kv heads = %v (tied %v), want %v", shape, got, cfg.TieWordEmbeddings, want)
		}
	}
}

func TestModelBenchUsage(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	tiny := []string{"--shape", "tiny"}
	for _, tc := range []struct {
		args []string
		flag string // the message must name it
	}{
		{nil, "--shape"},
		{[]string{"--shape", "tiny", "--config", "x.json"}, "--config"},
		{[]string{"--shape", "gpt-5"}, "--shape"},
		{append(tiny, "--mode", "serve"), "--mode"},
		{append(tiny, "--dtype", "float16"), "--dtype"},
		{append(tiny, "--batch", "-1"), "--batch"},
		{append(tiny, "--prompt-len", "0"), "--prompt-len"},
		{append(tiny, "--new-tokens", "0"), "--new-tokens"},
		{append(tiny, "--seq-len", "1"), "--seq-len"},
		{append(tiny, "--iters", "0"), "--iters"},
		{append(tiny, "--warmup", "-1"), "--warmup"},
		{append(tiny, "--micro-batch", "-2"), "--micro-batch"},
		{append(tiny, "--peak-tflops", "0"), "--peak-tflops"},
		{append(tiny, "--bandwidth-gbs", "-5"), "--bandwidth-gbs"},
		{append(tiny, "--iters", "many"), "-iters"},
		{append(tiny, "--fast"), "-fast"},
	} {
		msg, code := captureStderr(t, func() int {
			return dispatch(context.Background(), append([]string{"model", "bench"}, tc.args...))
		})
		if code != 2 || !strings.Contains(msg, tc.flag) {
			t.Errorf("%v: exited %d with %q, want 2 naming %s", tc.args, code, msg, tc.flag)
		}
	}
	bad := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(bad, []byte(`{"model_type": "gpt2"}`), 0o644)
	for _, path := range []string{bad, filepath.Join(t.TempDir(), "missing.json")} {
		msg, code := captureStderr(t, func() int {
			return dispatch(context.Background(), []string{"model", "bench", "--config", path})
		})
		if code != 1 || !strings.Contains(msg, filepath.Base(path)) && !strings.Contains(msg, "--config") {
			t.Errorf("--config %s: exited %d with %q, want 1", path, code, msg)
		}
	}
}
