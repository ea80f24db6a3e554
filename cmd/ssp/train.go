package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/builtin"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/dense"
	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/judge"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/score"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

func init() {
	register(command{
		name:    "train",
		summary: "train a search agent by self-play: propose, verify, solve, update",
		run:     runTrain,
	})
}

func runTrain(ctx context.Context, args []string) error {
	fs := newFlags("train", "[--config FILE.yaml] [--model DIR] [--adapter DIR] [--index DIR | --retriever URL] [--seeds FILE] "+
		"[--steps N] [--save-every N] [--out DIR] [--resume] [--backend NAME] [--print-config] [--plan [--gpu-memory 141GB]] [--section.key VALUE ...]")
	configPath := fs.String("config", "", "YAML configuration file; keys and defaults in docs/config.md")
	modelDir := fs.String("model", "", "policy checkpoint directory (run.model)")
	adapterDir := fs.String("adapter", "", "PEFT LoRA adapter directory to start from, loaded onto --model (run.adapter)")
	indexDir := fs.String("index", "", "embedded BM25 index directory (run.index)")
	retriever := fs.String("retriever", "", "URL of a Search-R1-compatible /retrieve server (run.retriever)")
	ranking := fs.String("ranking", "", dense.RankingHelp+" (run.ranking; default bm25)")
	seeds := fs.String("seeds", "", "JSONL file of target answers (run.seeds)")
	steps := fs.Int("steps", 0, "training steps (run.steps)")
	saveEvery := fs.Int("save-every", 0, "checkpoint every N steps (run.save_every)")
	out := fs.String("out", "", "run directory (run.out)")
	backend := fs.String("backend", "", backendHelp+" (run.backend)")
	resume := fs.Bool("resume", false, "continue from the newest complete checkpoint in the run directory")
	printConfig := fs.Bool("print-config", false, "print the effective configuration and exit")
	plan := fs.Bool("plan", false, "print the run's memory plan (weights, optimizer state, activations, KV cache) from config.json alone, without loading weights, and exit")
	gpuMemory := fs.String("gpu-memory", "", "with --plan: the device's memory (e.g. 141GB, 80GB, 24GiB): say whether the run fits and the cheapest change that makes it fit")
	applyKeys := selfplay.ConfigFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *gpuMemory != "" && !*plan {
		return fmt.Errorf("%w: --gpu-memory goes with --plan", errUsage)
	}

	// Defaults, then the file, then --section.key flags, then the short flags.
	configure := func(cfg selfplay.Config) (selfplay.Config, error) {
		if *configPath != "" {
			var err error
			if cfg, err = selfplay.LoadConfigOver(cfg, *configPath); err != nil {
				return cfg, fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		if err := applyKeys(&cfg); err != nil {
			return cfg, fmt.Errorf("%w: %v", errUsage, err)
		}
		fs.Visit(func(f *pflag.Flag) {
			switch f.Name {
			case "model":
				cfg.Run.Model = *modelDir
			case "adapter":
				cfg.Run.Adapter = *adapterDir
			case "index":
				cfg.Run.Index, cfg.Run.Retriever = *indexDir, ""
			case "retriever":
				cfg.Run.Retriever, cfg.Run.Index = *retriever, ""
			case "ranking":
				cfg.Run.Ranking = *ranking
			case "seeds":
				cfg.Run.Seeds = *seeds
			case "steps":
				cfg.Run.Steps = *steps
			case "save-every":
				cfg.Run.SaveEvery = *saveEvery
			case "out":
				cfg.Run.Out = *out
			case "backend":
				cfg.Run.Backend = *backend
			}
		})
		return cfg, nil
	}
	cfg, err := configure(selfplay.DefaultConfig())
	if err != nil {
		return err
	}
	if cfg.Run.Model == "" {
		// No model named: the built-in default (small model, built-in world,
		// its index and seeds), with the game scaled down for a CPU.
		base := selfplay.DefaultConfig()
		builtin.TrainConfig(&base)
		if cfg, err = configure(base); err != nil {
			return err
		}
		// Fail fast, before preparing the default; the built-in benchmark
		// fills run.eval_data below.
		check := cfg
		if check.Run.EvalData == "" {
			check.Run.EvalData = "built-in benchmark"
		}
		if err := check.Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if *plan {
			return runPlan(cfg, *gpuMemory)
		}
		if !*printConfig {
			limitBuiltinHeap()
			paths, err := prepareBuiltin(ctx)
			if err != nil {
				return err
			}
			cfg.Run.Model = paths.Model
			if cfg.Run.Index == "" && cfg.Run.Retriever == "" {
				cfg.Run.Index = paths.Index
			}
			if cfg.Run.Seeds == "" {
				cfg.Run.Seeds = paths.Seeds
			}
			if cfg.Run.EvalData == "" {
				cfg.Run.EvalData = paths.Benchmark
			}
			if cfg.Run.QAData == "" && cfg.Game.Problems == selfplay.ProblemsQA {
				cfg.Run.QAData = paths.TrainQA
			}
		}
	}
	if *printConfig {
		fmt.Print(cfg.Effective())
		return nil
	}
	if *plan {
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return runPlan(cfg, *gpuMemory)
	}
	check := cfg
	if check.Run.EvalData == "" && check.Run.Index == "" && check.Run.Retriever == "" {
		check.Run.EvalData = "built-in benchmark" // filled in below
	}
	if err := check.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if cfg.Run.Model != "" && cfg.Run.Index == "" && cfg.Run.Retriever == "" {
		// A model but no corpus: the built-in world's index, with its seeds
		// (seeds of another corpus would not be found in it).
		paths, err := prepareBuiltin(ctx)
		if err != nil {
			return err
		}
		cfg.Run.Index = paths.Index
		note("train: no --index or --retriever: the built-in world's index (%s)", paths.Index)
		if cfg.Run.Seeds == "" && cfg.Game.Problems == selfplay.ProblemsSelfPlay {
			cfg.Run.Seeds = paths.Seeds
			note("train: no --seeds: the built-in world's seeds (%s)", paths.Seeds)
		}
		if cfg.Run.EvalData == "" && cfg.Run.EvalEvery > 0 {
			cfg.Run.EvalData = paths.Benchmark
			note("train: no run.eval_data: the built-in held-out benchmark (%s)", paths.Benchmark)
		}
		if cfg.Run.QAData == "" && cfg.Game.Problems == selfplay.ProblemsQA {
			cfg.Run.QAData = paths.TrainQA
			note("train: no run.qa_data: the built-in world's training questions (%s)", paths.TrainQA)
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case cfg.Run.Model == "":
		return fmt.Errorf("%w: --model (run.model) is required", errUsage)
	case cfg.Run.Index == "" && cfg.Run.Retriever == "":
		return fmt.Errorf("%w: --index or --retriever (run.index / run.retriever) is required", errUsage)
	case cfg.Run.Seeds == "" && cfg.Game.Problems == selfplay.ProblemsSelfPlay:
		return fmt.Errorf("%w: --seeds (run.seeds) is required", errUsage)
	case cfg.Run.QAData == "" && cfg.Game.Problems == selfplay.ProblemsQA:
		return fmt.Errorf("%w: --run.qa_data is required when game.problems is %q", errUsage, selfplay.ProblemsQA)
	}
	return train(ctx, cfg, *resume)
}

// builtinHeapLimit is the soft memory limit of the built-in default run.
// The pure-Go backend keeps the buffers of every tensor shape it ran in
// pools that only a garbage collection empties, and the next collection is
// due when the heap has doubled, pools included: over the default's 32
// steps and two validations RSS grew to 6.4-7.7 GB. With this limit the
// collector runs before the pools outgrow it: 2.2 GB, in 6 min 6 s
// against 5 min 54 s (docs/benchmarks.md).
const builtinHeapLimit = 2 << 30

// limitBuiltinHeap sets builtinHeapLimit unless GOMEMLIMIT sets a limit.
func limitBuiltinHeap() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(builtinHeapLimit)
	}
}

// train loads everything a run needs and plays steps until run.steps.
func train(ctx context.Context, cfg selfplay.Config, resume bool) error {
	out := cfg.Run.Out
	start, policyDir := 0, cfg.Run.Model
	var checkpoint string
	if resume {
		var err error
		if checkpoint, start, err = selfplay.LatestCheckpoint(out); err != nil {
			return err
		}
		if start == 0 {
			slog.Info("no checkpoint to resume from; starting fresh", "out", out)
		} else {
			policyDir = checkpoint
		}
	}
	if start >= cfg.Run.Steps {
		return fmt.Errorf("%w: the run in %s is at step %d; raise --steps to train further", errUsage, out, start)
	}

	var seeds []selfplay.Seed
	var qa []selfplay.QAPair
	if cfg.Game.Problems == selfplay.ProblemsQA {
		examples, err := dataset.Read(ctx, cfg.Run.QAData)
		if err != nil {
			return err
		}
		for _, ex := range examples {
			qa = append(qa, selfplay.QAPair{Question: ex.Question, Answers: ex.GoldenAnswers})
		}
	} else {
		var err error
		if seeds, err = selfplay.LoadSeeds(cfg.Run.Seeds); err != nil {
			return err
		}
	}
	tok, err := tokenizer.Load(cfg.Run.Model)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	searcher, closeSearcher, err := openSearcher(cfg)
	if err != nil {
		return err
	}
	defer closeSearcher()

	policy, adapterSource, err := loadPolicy(cfg, policyDir, checkpoint)
	if err != nil {
		return err
	}
	var reference *model.Model
	if cfg.Optim.KLCoef > 0 {
		// The KL anchor is always the starting model, also when resuming;
		// under LoRA it is the base with the adapters off, read from the
		// policy's own weights.
		if adapterSource != "" {
			reference = policy.Base()
		} else if reference, err = model.Load(cfg.Run.Model, cfg.ReferenceLoadOptions()); err != nil {
			return err
		}
	}
	trainer, err := model.NewTrainer(policy, cfg.OptimizerConfig())
	if err != nil {
		return err
	}
	pool := &selfplay.ProblemPool{}
	if checkpoint != "" {
		if err := trainer.LoadState(filepath.Join(checkpoint, "optimizer")); err != nil {
			return err
		}
		if pool, err = selfplay.LoadCheckpointPool(checkpoint); err != nil {
			return err
		}
	}

	game := &selfplay.Game{
		Config: cfg, Policy: policy, Learner: trainer, Tokenizer: tok, EOSTokenIDs: tok.EOSTokenIDs(),
		Chat:     tok.SystemUserPrompt,
		Searcher: searcher, Seeds: seeds, QA: qa,
		ExtractAnswer: score.ExtractAnswer, ExactMatch: score.ExactMatch,
		Pool:     pool,
		Progress: &selfplay.Progress{W: os.Stderr, TotalSteps: cfg.Run.Steps},
	}
	if reference != nil {
		game.Reference = reference
	}
	rd, err := selfplay.OpenRunDir(out, cfg, start)
	if err != nil {
		return err
	}
	defer rd.Close()
	// The judge's verdict cache lives in the run directory, so it opens
	// after OpenRunDir has made (or checked) that directory: a file
	// written first would make a new run's directory look like one ssp
	// did not write.
	if cfg.Verify.JudgeURL != "" {
		j, err := judge.New(judge.Config{BaseURL: cfg.Verify.JudgeURL, Model: cfg.Verify.JudgeModel,
			APIKeyEnv: cfg.Verify.JudgeKeyEnv, CachePath: filepath.Join(out, "judge-cache.jsonl")})
		if err != nil {
			return err
		}
		defer j.Close()
		game.Judge = j.IsCorrect
		if cfg.Verify.RAGAnswerer == selfplay.RAGAnswererJudge {
			game.RAGAnswerer = func(ctx context.Context, system, user string) (string, error) {
				return j.Chat(ctx, system, user, ragAnswerTokens(cfg.Agent), float64(cfg.Verify.Temperature))
			}
		}
	}
	if adapterSource != "" {
		policyDir = cfg.Run.Model
	}
	if err := recordTrainProvenance(out, cfg, policyDir, adapterSource, start); err != nil {
		return err
	}
	slog.Info("training", "out", out, "from_step", start+1, "to_step", cfg.Run.Steps, "model", policyDir, "problems", cfg.Game.Problems, "seeds", len(seeds), "qa", len(qa))
	var saver selfplay.ModelSaver = policy
	if adapterSource != "" {
		lc, _ := policy.LoRA()
		slog.Info("LoRA", "rank", lc.Rank, "alpha", lc.Alpha, "dropout", lc.Dropout, "targets", strings.Join(lc.Targets, ","),
			"adapter_parameters", policy.NumAdapterParameters(), "base_parameters", policy.NumParameters(), "from", adapterSource)
		saver = adapterSaver{m: policy, merged: cfg.Optim.LoRA.SaveMerged}
	}
	runner := &selfplay.Runner{Game: game, Dir: rd, Model: saver, Optimizer: trainer}
	if cfg.Run.EvalEvery > 0 {
		if runner.Validate, err = validator(ctx, cfg, policy, tok, searcher); err != nil {
			return err
		}
	}
	if err := runner.Run(ctx, start+1, cfg.Run.Steps); err != nil {
		if errors.Is(err, context.Canceled) {
			_, last, _ := selfplay.LatestCheckpoint(out)
			return fmt.Errorf("interrupted; resume from step %d with --resume: %w", last, err)
		}
		return err
	}
	return nil
}

// loadPolicy loads the policy a run trains. Without LoRA it is the model
// in policyDir (run.model, or the checkpoint resumed from). With LoRA
// (optim.lora.rank > 0 or run.adapter) it is run.model with adapters: those
// of the checkpoint resumed from, else run.adapter, else fresh ones; their
// source is returned ("" without LoRA).
func loadPolicy(cfg selfplay.Config, policyDir, checkpoint string) (*model.Model, string, error) {
	lora, loraOn := cfg.LoRA()
	opts := cfg.LoadOptions()
	if !loraOn && cfg.Run.Adapter == "" {
		if checkpoint != "" && model.IsAdapterDir(checkpoint) {
			return nil, "", fmt.Errorf("%w: checkpoint %s holds a LoRA adapter but optim.lora.rank is 0 and run.adapter is unset: resume with the run's own configuration", errUsage, checkpoint)
		}
		m, err := model.Load(policyDir, opts)
		return m, "", err
	}
	source := cfg.Run.Adapter
	if checkpoint != "" {
		if !model.IsAdapterDir(checkpoint) {
			return nil, "", fmt.Errorf("%w: checkpoint %s holds a full model, not a LoRA adapter, but optim.lora.rank is %d: resume with the run's own configuration", errUsage, checkpoint, lora.Rank)
		}
		source = checkpoint
	}
	m, err := model.Load(cfg.Run.Model, opts)
	if err != nil {
		return nil, "", err
	}
	if source == "" {
		if err := m.AddLoRA(lora, cfg.Run.Seed); err != nil {
			m.Close()
			return nil, "", fmt.Errorf("%w: optim.lora: %v", errUsage, err)
		}
		return m, "fresh adapters", nil
	}
	if err := m.LoadAdapter(source); err != nil {
		m.Close()
		return nil, "", err
	}
	if got, _ := m.LoRA(); loraOn && got.Rank != lora.Rank {
		m.Close()
		return nil, "", fmt.Errorf("%w: optim.lora.rank is %d but the adapter %s has r %d: set optim.lora.rank to 0 (take the adapter's) or to %d",
			errUsage, lora.Rank, source, got.Rank, got.Rank)
	}
	return m, source, nil
}

// adapterSaver writes the checkpoints of a LoRA run: the adapter in PEFT's
// format at the top of the checkpoint, and with optim.lora.save_merged a
// full model with the adapters merged in, in merged/.
type adapterSaver struct {
	m      *model.Model
	merged bool
}

func (s adapterSaver) Save(dir string) error {
	if err := s.m.SaveAdapter(dir); err != nil {
		return err
	}
	if s.merged {
		return s.m.Save(filepath.Join(dir, "merged"))
	}
	return nil
}

// trainProvenance is one line of a run's provenance.jsonl: what started
// or resumed it. config.yaml beside it holds every setting.
type trainProvenance struct {
	Command   string `json:"command"`
	Code      string `json:"code"`
	Started   string `json:"started"`
	FromStep  int    `json:"from_step"`         // 0: a fresh run
	Policy    string `json:"policy"`            // the weights it started from
	Adapter   string `json:"adapter,omitempty"` // the LoRA adapters it started from
	Model     string `json:"model"`             // run.model, the reference
	Index     string `json:"index,omitempty"`
	Retriever string `json:"retriever,omitempty"`
	Seeds     string `json:"seeds,omitempty"`
	QAData    string `json:"qa_data,omitempty"`
	EvalData  string `json:"eval_data,omitempty"`
	Backend   string `json:"backend"`
	Seed      int64  `json:"seed"`
}

// recordTrainProvenance appends what starts this invocation to
// RUN/provenance.jsonl, one line per start or resume, synced to disk.
func recordTrainProvenance(out string, cfg selfplay.Config, policyDir, adapter string, start int) error {
	p := trainProvenance{
		Command: strings.Join(os.Args, " "), Code: eval.CodeVersion(), Started: time.Now().UTC().Format(time.RFC3339),
		FromStep: start, Policy: policyDir, Adapter: adapter, Model: cfg.Run.Model, Index: cfg.Run.Index, Retriever: cfg.Run.Retriever,
		Seeds: cfg.Run.Seeds, QAData: cfg.Run.QAData, EvalData: cfg.Run.EvalData,
		Backend: cmp.Or(cfg.Run.Backend, os.Getenv("GOMLX_BACKEND"), "go"), Seed: cfg.Run.Seed,
	}
	line, err := json.Marshal(p)
	if err != nil {
		return err
	}
	path := filepath.Join(out, "provenance.jsonl")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// openSearcher opens the embedded index or connects to a retrieval server.
func openSearcher(cfg selfplay.Config) (search.Searcher, func(), error) {
	if cfg.Run.Retriever != "" {
		c, err := search.NewClient(cfg.Run.Retriever, search.DefaultClientOptions())
		if err != nil {
			return nil, nil, err
		}
		return c, func() {}, nil
	}
	searcher, ix, closeIndex, err := dense.OpenRanking(cfg.Run.Index, cfg.Run.Ranking,
		dense.Options{Encoder: cfg.Run.Encoder, Backend: cfg.Run.Backend}, search.DefaultFusion())
	if err != nil {
		return nil, nil, fmt.Errorf("run.index %s (run.ranking %s): %w", cfg.Run.Index, cmp.Or(cfg.Run.Ranking, "bm25"), err)
	}
	if ix.NumDocs() == 0 {
		closeIndex()
		return nil, nil, fmt.Errorf("run.index %s holds no documents: the proposer has nothing to search; build it from a non-empty corpus", cfg.Run.Index)
	}
	return searcher, func() { closeIndex() }, nil
}

// validator evaluates the policy being trained on run.eval_data with the
// evaluator's solver loop (greedy), writing a full report to
// <out>/eval/step-N/ and returning the headline figures for metrics.jsonl.
func validator(ctx context.Context, cfg selfplay.Config, policy *model.Model, tok *tokenizer.Tokenizer,
	searcher search.Searcher) (func(context.Context, int) (selfplay.Metrics, error), error) {
	examples, err := dataset.Read(ctx, cfg.Run.EvalData)
	if err != nil {
		return nil, fmt.Errorf("run.eval_data: %w", err)
	}
	if cfg.Run.EvalLimit > 0 && len(examples) > cfg.Run.EvalLimit {
		examples = examples[:cfg.Run.EvalLimit]
	}
	a := cfg.Agent
	prompts, err := selfplay.Prompts(cfg.Game.Prompts)
	if err != nil {
		return nil, err
	}
	// A validation of the built-in benchmark takes about a minute of a CPU:
	// it reports progress as `ssp eval` does, so the run is never silent.
	var progress *eval.Progress
	solve := eval.AgentSolver(policy, tok, searcher, prompts.Solver, agent.Config{
		FinalTag: "answer", Search: true,
		MaxTurns: a.MaxTurns, MaxTokensPerTurn: a.MaxTokensPerTurn, MaxResponseTokens: a.MaxResponseTokens,
		TopK: a.TopK, MaxInformationChars: a.MaxInformationChars, Temperature: 0, EOSTokenIDs: tok.EOSTokenIDs(),
		OnToken: func(int, int32) { progress.AddTokens(1) },
	})
	return func(ctx context.Context, step int) (selfplay.Metrics, error) {
		progress = eval.NewProgress(os.Stderr)
		dir := filepath.Join(cfg.Run.Out, "eval", fmt.Sprintf("step-%d", step))
		// ReplaceRun: a report of this step is left by a run killed after
		// validating and resumed from an earlier checkpoint; partial results
		// of a validation killed midway may be of another policy.
		if err := os.RemoveAll(eval.PartialDir(dir)); err != nil {
			return nil, err
		}
		prov := &eval.Provenance{Command: strings.Join(os.Args, " "), Code: eval.CodeVersion(), Started: time.Now().UTC().Format(time.RFC3339),
			Model: fmt.Sprintf("%s at step %d", cfg.Run.Out, step), Index: cfg.Run.Index, Retriever: cfg.Run.Retriever, Data: []string{cfg.Run.EvalData},
			Settings: map[string]any{"decoding": "greedy", "max_turns": a.MaxTurns, "max_tokens_per_turn": a.MaxTokensPerTurn,
				"max_response_tokens": a.MaxResponseTokens, "topk": a.TopK, "max_information_chars": a.MaxInformationChars, "prompts": cfg.Game.Prompts}}
		m, err := eval.Run(ctx, eval.Config{OutDir: dir, BatchSize: 64, ReplaceRun: true, Title: fmt.Sprintf("validation at step %d", step),
			Provenance: prov, Progress: progress}, examples, solve)
		if err != nil {
			return nil, err
		}
		slog.Info("validation report written", "step", step, "dir", dir)
		out := selfplay.Metrics{{Name: "eval/em", Value: m.Overall.EM}, {Name: "eval/f1", Value: m.Overall.F1},
			{Name: "eval/avg_searches", Value: m.Overall.AvgSearches}}
		for _, hops := range sortedHops(m.ByHops) {
			out = append(out, selfplay.Metric{Name: "eval/em_hops_" + hops, Value: m.ByHops[hops].EM})
		}
		return out, nil
	}, nil
}

func sortedHops(m map[string]eval.Group) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// prepareBuiltin returns the built-in world, index and model, preparing
// them in the cache directory on first use.
func prepareBuiltin(ctx context.Context) (builtin.Paths, error) {
	cache, err := builtin.DefaultCacheDir()
	if err != nil {
		return builtin.Paths{}, err
	}
	return builtin.Prepare(ctx, cache, func(format string, args ...any) { slog.Info(fmt.Sprintf(format, args...)) })
}

// ragAnswerTokens is the most tokens an external RAG answerer may write:
// what the policy may write in its one RAG turn, agent.max_tokens_per_turn
// when set, else agent.max_response_tokens (0 would ask the endpoint for
// nothing, or be refused).
func ragAnswerTokens(a selfplay.AgentConfig) int {
	return agent.TurnBudget(a.MaxTokensPerTurn, a.MaxResponseTokens)
}
