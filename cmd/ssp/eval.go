package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

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
	fs := newFlags("eval", "(--predictions F.jsonl | --model DIR) --data FILE [--data ...] --out RUNDIR [judge flags]")
	var data repeatedFlag
	fs.Var(&data, "data", "eval data: JSONL in the eval format or Search-R1 .parquet; repeatable")
	preds := fs.String("predictions", "", "predictions JSONL ({id, prediction|response, turns, searches, tokens, finish_reason})")
	model := fs.String("model", "", "policy checkpoint directory to solve the questions with")
	out := fs.String("out", "", "run directory to create")
	force := fs.Bool("force", false, "replace --out when it already holds an eval run or another directory (never a file)")
	batch := fs.Int("batch", 32, "examples per solver batch")
	limit := fs.Int("limit", 0, "evaluate only the first N examples (0: all)")
	judgeURL := fs.String("judge-url", "", "OpenAI-compatible endpoint base URL for the LLM judge (empty: no judge)")
	judgeModel := fs.String("judge-model", "", "judge model name")
	judgeKeyEnv := fs.String("judge-key-env", "", "environment variable holding the judge API key")
	judgeCache := fs.String("judge-cache", "", "judge verdict cache (JSONL); default: judge-cache.jsonl beside --out")
	judgeConc := fs.Int("judge-concurrency", 8, "judge requests in flight")
	judgeTimeout := fs.Duration("judge-timeout", 60*time.Second, "judge request timeout")
	judgeRetries := fs.Int("judge-retries", 4, "judge retries on 5xx, 429 and connection errors")
	solverOpts := modelSolverFlags(fs)
	files, err := parseFlagsAndFiles(fs, args)
	if err != nil {
		return err
	}
	data = append(data, files...)
	if *model == "" && *preds == "" && len(data) == 0 {
		// Nothing to evaluate named: the built-in model on the built-in
		// held-out benchmark (other flags such as --limit and --out apply).
		d, err := builtinEvalDefaults(ctx, solverOpts)
		if err != nil {
			return err
		}
		*model, data = solverOpts.Model, []string{d.benchmark}
		if *out == "" {
			*out = d.out
		}
	}
	switch {
	case *out == "":
		return fmt.Errorf("%w: --out is required", errUsage)
	case len(data) == 0:
		return fmt.Errorf("%w: --data is required", errUsage)
	case (*preds == "") == (*model == ""):
		return fmt.Errorf("%w: give exactly one of --predictions and --model", errUsage)
	case *judgeURL != "" && *judgeModel == "":
		return fmt.Errorf("%w: --judge-url needs --judge-model", errUsage)
	case *batch <= 0:
		return fmt.Errorf("%w: --batch %d: want a positive number of examples per batch", errUsage, *batch)
	case *limit < 0:
		return fmt.Errorf("%w: --limit %d: want a number of examples >= 0 (0: all)", errUsage, *limit)
	}
	if err := outdir.Check(*out, outdir.EvalRun, outdir.Options{Force: *force, ForceFlag: "--force", Fresh: true}); err != nil {
		return err
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
	var solve eval.SolveFunc
	cfg := eval.Config{OutDir: *out, BatchSize: *batch, Force: *force}
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
		solverOpts.Model = *model
		s, closeFn, err := modelSolver(ctx, *solverOpts)
		if err != nil {
			return fmt.Errorf("model %s: %w", *model, err)
		}
		defer closeFn()
		solve = s
		cfg.Progress = os.Stderr
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

func runEvalCompare(ctx context.Context, args []string) error {
	fs := newFlags("eval compare", "RUN_A RUN_B")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: want two run directories", errUsage)
	}
	a, err := eval.ReadMetrics(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := eval.ReadMetrics(fs.Arg(1))
	if err != nil {
		return err
	}
	eval.Compare(os.Stdout, fs.Arg(0), fs.Arg(1), a, b)
	return nil
}
