package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/judge"
	"github.com/ssp-project/ssp/internal/outdir"
)

func init() {
	register(command{name: "eval", summary: "score a model or a predictions file on QA data and write a run directory", run: runEval})
	register(command{name: "eval compare", summary: "compare the metrics of two eval runs", run: runEvalCompare})
}

// modelSolver builds the solver that drives a policy checkpoint through the
// search agent loop (eval_model.go).
var modelSolver func(ctx context.Context, opts modelSolverOptions) (eval.SolveFunc, func() error, error)

func runEval(ctx context.Context, args []string) error {
	fs := newFlags("eval", "[--model DIR | --predictions F.jsonl] [--data FILE ...] [--out RUNDIR] [--resume] [judge flags]")
	var data repeatedFlag
	fs.Var(&data, "data", "eval data: JSONL in the eval format or Search-R1 .parquet; repeatable (default with --model: the training run's run.eval_data, else the built-in benchmark)")
	preds := fs.String("predictions", "", "predictions JSONL ({id, prediction|response, turns, searches, tokens, finish_reason})")
	model := fs.String("model", "", "policy checkpoint directory to solve the questions with (default: the built-in model)")
	out := fs.String("out", "", "run directory to create (default: runs/eval-<UTC time>)")
	force := fs.Bool("force", false, "replace --out when it already holds an eval run or another directory (never a file)")
	resume := fs.Bool("resume", false, "continue an interrupted run from the examples kept in RUNDIR.partial (without --out: the newest runs/eval-*.partial)")
	batch := fs.Int("batch", 0, "examples per solver batch; finished batches are kept for --resume (0: 8 for a model on the go backend, else 32)")
	limit := fs.Int("limit", 0, "evaluate only the first N examples (0: all)")
	judgeURL := fs.String("judge-url", "", "OpenAI-compatible endpoint base URL for the LLM judge (empty: no judge)")
	judgeModel := fs.String("judge-model", "", "judge model name")
	judgeKeyEnv := fs.String("judge-key-env", "", "environment variable holding the judge API key")
	judgeCache := fs.String("judge-cache", "", "judge verdict cache (JSONL); default: judge-cache.jsonl beside --out")
	judgeConc := fs.Int("judge-concurrency", 8, "judge requests in flight")
	judgeTimeout := fs.Duration("judge-timeout", 60*time.Second, "judge request timeout")
	judgeRetries := fs.Int("judge-retries", 4, "judge retries on 5xx, 429 and connection errors")
	solverOpts := modelSolverFlags(fs)
	if err := parseFlags(fs, args, oldSolverFlags); err != nil {
		return err
	}
	data = append(data, fs.Args()...)
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	if *preds != "" && *model != "" {
		return fmt.Errorf("%w: give exactly one of --predictions and --model", errUsage)
	}
	if *judgeURL != "" && *judgeModel == "" {
		return fmt.Errorf("%w: --judge-url needs --judge-model", errUsage)
	}
	if *preds == "" {
		// A model evaluation: fill in what was not given from the training
		// run the checkpoint belongs to, then from the built-in default.
		solverOpts.Model = *model
		if err := modelEvalDefaults(ctx, solverOpts, &data, set); err != nil {
			return err
		}
		*model = solverOpts.Model
	}
	switch {
	case len(data) == 0:
		return fmt.Errorf("%w: --data is required with --predictions", errUsage)
	case *batch < 0:
		return fmt.Errorf("%w: --batch %d: want a positive number of examples per batch (0: the backend's default)", errUsage, *batch)
	case *limit < 0:
		return fmt.Errorf("%w: --limit %d: want a number of examples >= 0 (0: all)", errUsage, *limit)
	}
	if *out == "" && *resume {
		found, err := newestPartialEval("runs")
		if err != nil {
			return err
		}
		*out = found
		note("eval: resuming %s", *out)
	}
	if *out == "" {
		*out = filepath.Join("runs", "eval-"+time.Now().UTC().Format("20060102-150405"))
		note("eval: writing %s (--out to choose)", *out)
	}
	if err := outdir.Check(*out, outdir.EvalRun, outdir.Options{Force: *force, ForceFlag: "--force", Fresh: true}); err != nil {
		return err
	}
	if *batch == 0 {
		*batch = 32
		if *model != "" && !solverOpts.Builtin && isGoBackend(solverOpts.Backend) {
			*batch = 8 // a real model on the CPU: results kept, and shown, every few minutes
		}
	}
	var examples []dataset.Example
	for _, f := range data {
		ex, err := dataset.Read(ctx, f)
		if err != nil {
			return err
		}
		examples = append(examples, ex...)
	}
	if *limit > 0 && *limit < len(examples) {
		examples = examples[:*limit]
	}
	prov := &eval.Provenance{
		Command: strings.Join(os.Args, " "), Code: eval.CodeVersion(), Started: time.Now().UTC().Format(time.RFC3339),
		Predictions: *preds, Data: data, Settings: map[string]any{"batch": *batch, "limit": *limit},
	}
	progress := eval.NewProgress(os.Stderr)
	var solve eval.SolveFunc
	cfg := eval.Config{OutDir: *out, BatchSize: *batch, Force: *force, Resume: *resume, Progress: progress, Provenance: prov}
	if *preds != "" {
		p, err := eval.ReadPredictions(*preds)
		if err != nil {
			return err
		}
		solve = eval.PredictionSolver(p)
	} else {
		if modelSolver == nil {
			return errors.New("--model: this build has no model solver linked in; use --predictions")
		}
		prov.Model, prov.Index, prov.Retriever = solverOpts.Model, solverOpts.Index, solverOpts.Retriever
		maps.Copy(prov.Settings, solverOpts.settings())
		solverOpts.OnToken = func() { progress.AddTokens(1) }
		note("eval: loading %s", *model)
		s, closeFn, err := modelSolver(ctx, *solverOpts)
		if err != nil {
			return fmt.Errorf("model %s: %w", *model, err)
		}
		defer closeFn()
		solve = s
		note("eval: %d examples in batches of %d; a progress line every 10 s", len(examples), *batch)
	}
	if *judgeURL != "" {
		cache := *judgeCache
		if cache == "" {
			cache = *out + ".judge-cache.jsonl"
		}
		j, err := judge.New(judge.Config{BaseURL: *judgeURL, Model: *judgeModel, APIKeyEnv: *judgeKeyEnv, CachePath: cache,
			Concurrency: *judgeConc, Timeout: *judgeTimeout, MaxRetries: *judgeRetries})
		if err != nil {
			return err
		}
		defer j.Close()
		cfg.Judge = j
		prov.Settings["judge_url"], prov.Settings["judge_model"] = *judgeURL, *judgeModel
	}
	m, err := eval.Run(ctx, cfg, examples, solve)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "eval: %d examples, EM %.1f, F1 %.1f, SubEM %.1f; wrote %s\n",
		m.Examples, 100*m.Overall.EM, 100*m.Overall.F1, 100*m.Overall.SubEM, *out)
	if m.Judge != nil && m.Judge.Errors > 0 {
		fmt.Fprintf(os.Stderr, "eval: %d judge errors counted as incorrect\n", m.Judge.Errors)
	}
	return nil
}

// note tells the user on stderr which default was taken.
func note(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// newestPartialEval returns the run directory of the newest interrupted
// eval under dir (the RUNDIR of its RUNDIR.partial).
func newestPartialEval(dir string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "eval-*.partial"))
	best, bestTime := "", time.Time{}
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.IsDir() && st.ModTime().After(bestTime) {
			best, bestTime = m, st.ModTime()
		}
	}
	if best == "" {
		return "", fmt.Errorf("%w: --resume without --out: no interrupted eval (%s) to resume; give --out", errUsage, filepath.Join(dir, "eval-*.partial"))
	}
	return strings.TrimSuffix(best, ".partial"), nil
}

func runEvalCompare(ctx context.Context, args []string) error {
	fs := newFlags("eval compare", "RUN_A RUN_B [--force]")
	force := fs.Bool("force", false, "compare runs over different questions anyway (with a warning)")
	runs, err := parseFlagsAndFiles(fs, args)
	if err != nil {
		return err
	}
	if len(runs) != 2 {
		return fmt.Errorf("%w: want two run directories", errUsage)
	}
	a, err := eval.ReadMetrics(runs[0])
	if err != nil {
		return err
	}
	b, err := eval.ReadMetrics(runs[1])
	if err != nil {
		return err
	}
	if err := eval.Comparable(a, b); err != nil {
		if !*force {
			return fmt.Errorf("%s and %s: %w; their scores are not comparable (--force to compare anyway)", runs[0], runs[1], err)
		}
		fmt.Fprintf(os.Stderr, "eval compare: warning: %v\n", err)
		fmt.Fprintf(os.Stdout, "WARNING: %v\n\n", err)
	}
	eval.Compare(os.Stdout, runs[0], runs[1], a, b)
	return nil
}
