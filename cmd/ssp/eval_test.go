package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/bootstrap"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/selfplay"
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
	// A run over all twelve questions is not comparable with the one-question run.
	preds12 := filepath.Join(dir, "p12.jsonl")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(all)), "\n") {
		var ex struct{ ID string }
		json.Unmarshal([]byte(l), &ex)
		lines = append(lines, `{"id":"`+ex.ID+`","prediction":"x"}`)
	}
	os.WriteFile(preds12, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	run12 := filepath.Join(dir, "run12")
	if err := runEval(ctx, []string{"--predictions", preds12, "--data", data, "--out", run12}); err != nil {
		t.Fatal(err)
	}
	if err := runEvalCompare(ctx, []string{run, run12}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("comparing 1 with 12 questions: %v", err)
	}
	if err := runEvalCompare(ctx, []string{run, run12, "--force"}); err != nil {
		t.Errorf("--force: %v", err)
	}
}

func TestEvalUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"--predictions", "p", "--model", "m", "--data", "x", "--out", "r"},
		{"--predictions", "p", "--out", "r"},
		{"--predictions", "p", "--data", "x", "--out", "r", "--judge-url", "http://x"},
		{"--predictions", "p", "--data", "x", "--out", "r", "--limit", "-3"},
		{"--predictions", "p", "--data", "x", "--out", "r", "--batch", "-1"},
	} {
		if err := runEval(ctx, args); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want usage error", args, err)
		}
	}
	if err := runDataImport(ctx, []string{"--format", "csv", "f", "--out", "o"}); !errors.Is(err, errUsage) {
		t.Errorf("bad format: %v", err)
	}
}

// TestModelEvalDefaults checks what `ssp eval --model` takes when flags are
// missing: a checkpoint of a training run takes the run's search, prompts,
// agent bounds and held-out data; flags given win; another checkpoint on
// the pure-Go backend gets the CPU bounds.
func TestModelEvalDefaults(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	run := filepath.Join(t.TempDir(), "runs", "qwen")
	ckpt := filepath.Join(run, "checkpoints", "step-4")
	os.MkdirAll(ckpt, 0o755)
	cfg := selfplay.DefaultConfig()
	cfg.Run.Index, cfg.Run.EvalData, cfg.Game.Prompts = "/idx/wiki", "/data/nq.jsonl", "ssp"
	cfg.Agent.MaxTurns, cfg.Agent.MaxResponseTokens = 7, 777
	os.WriteFile(filepath.Join(run, "config.yaml"), []byte(cfg.Effective()), 0o644)

	parse := func(args ...string) (*modelSolverOptions, map[string]bool) {
		fs := newFlags("eval", "")
		o := modelSolverFlags(fs)
		if err := parseFlags(fs, args, oldSolverFlags); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
		return o, set
	}
	o, set := parse()
	o.Model = ckpt
	var data repeatedFlag
	if err := modelEvalDefaults(context.Background(), o, &data, set); err != nil {
		t.Fatal(err)
	}
	if o.Index != "/idx/wiki" || o.Prompts != "ssp" || o.MaxTurns != 7 || o.MaxResponseTokens != 777 || len(data) != 1 || data[0] != "/data/nq.jsonl" {
		t.Errorf("from the training run: %+v, data %v", o, data)
	}

	o, set = parse("--index", "/other", "--max-turns", "2") // the old spelling of --agent.max_turns
	o.Model = ckpt
	data = repeatedFlag{"/mine.jsonl"}
	if err := modelEvalDefaults(context.Background(), o, &data, set); err != nil {
		t.Fatal(err)
	}
	if o.Index != "/other" || o.MaxTurns != 2 || o.MaxResponseTokens != 777 || len(data) != 1 || data[0] != "/mine.jsonl" {
		t.Errorf("flags over the training run: %+v, data %v", o, data)
	}

	o, set = parse("--index", "/other")
	o.Model = filepath.Join(t.TempDir(), "models", "smollm2")
	data = repeatedFlag{"/mine.jsonl"}
	if err := modelEvalDefaults(context.Background(), o, &data, set); err != nil {
		t.Fatal(err)
	}
	if o.MaxTurns != cpuAgentBounds.MaxTurns || o.MaxResponseTokens != cpuAgentBounds.MaxResponseTokens {
		t.Errorf("a checkpoint outside a run on the go backend: %+v, want the CPU bounds", o)
	}
	o, set = parse("--index", "/other", "--backend", "xla:cuda")
	o.Model = filepath.Join(t.TempDir(), "m")
	if err := modelEvalDefaults(context.Background(), o, &data, set); err != nil {
		t.Fatal(err)
	}
	if o.MaxTurns != selfplay.DefaultConfig().Agent.MaxTurns {
		t.Errorf("on XLA: %+v, want the training bounds", o)
	}

	// A base written by `ssp world bootstrap` is evaluated with the prompts
	// and agent settings of its episodes.
	base := filepath.Join(t.TempDir(), "base")
	os.MkdirAll(base, 0o755)
	b := bootstrap.DefaultOptions()
	b.Prompts, b.TopK, b.MaxInformationChars, b.MaxTurns, b.MaxTokensPerTurn, b.MaxResponseTokens = "minimal", 1, 456, 4, 33, 999
	rep, _ := json.Marshal(bootstrap.Report{Options: b})
	os.WriteFile(filepath.Join(base, "bootstrap.json"), rep, 0o644)
	o, set = parse("--index", "/other", "--agent.max_turns", "2")
	o.Model = base
	if err := modelEvalDefaults(context.Background(), o, &data, set); err != nil {
		t.Fatal(err)
	}
	if o.Prompts != "minimal" || o.TopK != 1 || o.MaxInformationChars != 456 || o.MaxTokensPerTurn != 33 || o.MaxResponseTokens != 999 || o.MaxTurns != 2 {
		t.Errorf("a bootstrapped base: %+v, want its bootstrap settings (and --agent.max_turns 2)", o)
	}
	os.WriteFile(filepath.Join(base, "bootstrap.json"), []byte("{"), 0o644)
	if err := modelEvalDefaults(context.Background(), o, &data, set); err == nil || !strings.Contains(err.Error(), "bootstrap.json") {
		t.Errorf("a damaged bootstrap.json: %v", err)
	}
}

// TestEvalResumeCommandLine interrupts nothing but checks the command line
// of a resumed eval: a partial run is refused without --resume, continued
// with it, and found without --out.
func TestEvalResumeCommandLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	data := filepath.Join(dir, "d.jsonl")
	os.WriteFile(data, []byte(`{"id":"1","question":"q","golden_answers":["a"],"data_source":"s"}
{"id":"2","question":"r","golden_answers":["b"],"data_source":"s"}
`), 0o644)
	preds := filepath.Join(dir, "p.jsonl")
	os.WriteFile(preds, []byte(`{"id":"1","prediction":"a"}`+"\n"+`{"id":"2","prediction":"c"}`+"\n"), 0o644)
	// What an eval interrupted after its first example leaves.
	partial := filepath.Join("runs", "eval-x.partial")
	os.MkdirAll(partial, 0o755)
	os.WriteFile(filepath.Join(partial, "trajectories.jsonl"), []byte(`{"id":"1","prediction":"a","turns":0,"searches":0,"tokens":0,"finish_reason":"answer","question":"q","golden_answers":["a"],"data_source":"s","em":1,"f1":1,"subem":1}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(partial, "provenance.json"), []byte(`{"predictions":"`+preds+`","examples":2,"data_digest":"sha256:stale"}`), 0o644)
	err := runEval(ctx, []string{"--predictions", preds, "--data", data, "--out", "runs/eval-x"})
	if err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("existing partial run without --resume: %v", err)
	}
	err = runEval(ctx, []string{"--predictions", preds, "--data", data, "--resume"})
	if err == nil || !strings.Contains(err.Error(), "other examples") {
		t.Fatalf("partial run of other data: %v", err)
	}
	digest := `"data_digest":"` + evalDigest(t, data) + `"`
	os.WriteFile(filepath.Join(partial, "provenance.json"), []byte(`{"predictions":"`+preds+`","examples":2,`+digest+`}`), 0o644)
	if err := runEval(ctx, []string{"--predictions", preds, "--data", data, "--resume"}); err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(filepath.Join("runs", "eval-x", "metrics.json"))
	if err != nil || !strings.Contains(string(m), `"em": 0.5`) {
		t.Fatalf("metrics.json after resuming: %s %v", m, err)
	}
}

func evalDigest(t *testing.T, path string) string {
	ex, err := dataset.Read(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return eval.DigestExamples(ex)
}
