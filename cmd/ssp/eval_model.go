package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/builtin"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/score"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

func init() { modelSolver = newModelSolver }

// modelSolverOptions configure the solver agent of `ssp eval --model`: the
// same multi-turn search loop and prompt the trainer uses, decoded greedily.
type modelSolverOptions struct {
	Model               string
	Index               string
	Retriever           string
	Backend             string
	MaxTurns            int
	MaxTokensPerTurn    int
	MaxResponseTokens   int
	TopK                int
	MaxInformationChars int
	Prompts             string
}

func modelSolverFlags(fs *flag.FlagSet) *modelSolverOptions {
	agentDefaults := selfplay.DefaultConfig().Agent
	o := &modelSolverOptions{}
	fs.StringVar(&o.Index, "index", "", "BM25 index directory the solver searches (with --model)")
	fs.StringVar(&o.Retriever, "retriever", "", "URL of a Search-R1-compatible /retrieve server (instead of --index)")
	fs.StringVar(&o.Backend, "backend", "", "compute backend: go, xla:cpu, xla:cuda (default: $GOMLX_BACKEND or go)")
	fs.IntVar(&o.MaxTurns, "max-turns", agentDefaults.MaxTurns, "model turns per question (each search ends a turn)")
	fs.IntVar(&o.MaxTokensPerTurn, "max-tokens-per-turn", agentDefaults.MaxTokensPerTurn, "most tokens generated per turn; a cut turn is continued by the next (0 = no bound but --max-response-tokens)")
	fs.IntVar(&o.MaxResponseTokens, "max-response-tokens", agentDefaults.MaxResponseTokens, "tokens after the prompt, generated and inserted")
	fs.IntVar(&o.TopK, "topk", agentDefaults.TopK, "documents per search call")
	fs.IntVar(&o.MaxInformationChars, "max-information-chars", agentDefaults.MaxInformationChars, "characters of search results inserted per call (0: no bound)")
	fs.StringVar(&o.Prompts, "prompts", selfplay.DefaultConfig().Game.Prompts, "solver prompt wording: ssp-short, ssp or minimal (match the training run's game.prompts)")
	return o
}

type evalDefaults struct{ out, benchmark string }

// builtinEvalDefaults points a no-argument `ssp eval` at the built-in model,
// index and held-out benchmark, with the agent bounds of the built-in
// training run.
func builtinEvalDefaults(ctx context.Context, o *modelSolverOptions) (evalDefaults, error) {
	cache, err := builtin.DefaultCacheDir()
	if err != nil {
		return evalDefaults{}, err
	}
	p, err := builtin.Prepare(ctx, cache, func(format string, args ...any) { slog.Info(fmt.Sprintf(format, args...)) })
	if err != nil {
		return evalDefaults{}, err
	}
	cfg := selfplay.DefaultConfig()
	builtin.TrainConfig(&cfg)
	o.Model, o.Index = p.Model, p.Index
	o.MaxTurns, o.MaxTokensPerTurn, o.MaxResponseTokens = cfg.Agent.MaxTurns, cfg.Agent.MaxTokensPerTurn, cfg.Agent.MaxResponseTokens
	o.MaxInformationChars, o.TopK = cfg.Agent.MaxInformationChars, cfg.Agent.TopK
	o.Prompts = cfg.Game.Prompts
	out := filepath.Join("runs", "eval-"+time.Now().UTC().Format("20060102-150405"))
	return evalDefaults{out: out, benchmark: p.Benchmark}, nil
}

func newModelSolver(ctx context.Context, o modelSolverOptions) (eval.SolveFunc, func() error, error) {
	if o.Index == "" && o.Retriever == "" {
		return nil, nil, fmt.Errorf("%w: --model needs --index or --retriever to search", errUsage)
	}
	if o.Prompts == "" {
		o.Prompts = selfplay.DefaultConfig().Game.Prompts
	}
	prompts, err := selfplay.Prompts(o.Prompts)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: --prompts: %v", errUsage, err)
	}
	tok, err := tokenizer.Load(o.Model)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenizer: %w", err)
	}
	var searcher search.Searcher
	closeSearcher := func() error { return nil }
	if o.Retriever != "" {
		c, err := search.NewClient(o.Retriever, search.DefaultClientOptions())
		if err != nil {
			return nil, nil, err
		}
		searcher = c
	} else {
		ix, err := index.Open(o.Index)
		if err != nil {
			return nil, nil, err
		}
		searcher, closeSearcher = ix, ix.Close
	}
	m, err := model.Load(o.Model, model.LoadOptions{Backend: o.Backend})
	if err != nil {
		closeSearcher()
		return nil, nil, err
	}
	cfg := agent.Config{
		FinalTag: "answer", Search: true,
		MaxTurns: o.MaxTurns, MaxTokensPerTurn: o.MaxTokensPerTurn, MaxResponseTokens: o.MaxResponseTokens,
		TopK: o.TopK, MaxInformationChars: o.MaxInformationChars,
		Temperature: 0, EOSTokenIDs: tok.EOSTokenIDs(),
	}
	solve := agentSolver(m, tok, searcher, prompts.Solver, cfg)
	closeAll := func() error {
		m.Close()
		return closeSearcher()
	}
	return solve, closeAll, nil
}

// agentSolver answers examples with the solver prompt and the agent loop,
// as in training: the same code path for `ssp eval --model` and the
// validation inside `ssp train`.
func agentSolver(gen agent.Generator, tok *tokenizer.Tokenizer, searcher search.Searcher,
	messages func(question string) (system, user string), cfg agent.Config) eval.SolveFunc {
	return func(ctx context.Context, batch []dataset.Example) ([]eval.Trajectory, error) {
		prompts := make([][]int32, len(batch))
		for i, ex := range batch {
			system, user := messages(ex.Question)
			text, err := tok.ApplyChatTemplate([]tokenizer.Message{{Role: "system", Content: system}, {Role: "user", Content: user}}, true)
			if err != nil {
				return nil, err
			}
			prompts[i] = tok.Encode(text)
		}
		trajs, err := agent.Run(ctx, gen, tok, searcher, prompts, cfg)
		if err != nil {
			return nil, err
		}
		out := make([]eval.Trajectory, len(batch))
		for i, t := range trajs {
			// Only the model's own text counts: an <answer> tag inside a
			// retrieved document is not the model's answer.
			pred, _ := score.ExtractAnswer(t.Generated)
			out[i] = eval.Trajectory{
				ID: batch[i].ID, Response: t.Response, Prediction: pred,
				Turns: t.Turns, Searches: len(t.Searches), Tokens: t.GeneratedTokens,
				FinishReason: evalFinishReason(t.Finish),
			}
		}
		return out, nil
	}
}

// evalFinishReason maps the agent loop's finish reasons to the report's
// failure categories.
func evalFinishReason(f agent.FinishReason) string {
	switch f {
	case agent.FinishAnswer:
		return eval.FinishAnswer
	case agent.FinishTurnLimit, agent.FinishTurnLength:
		return eval.FinishTurnLimit
	case agent.FinishLength:
		return eval.FinishLength
	case agent.FinishQuestion:
		return eval.FinishFormatError // a solver that writes a question broke the protocol
	default:
		return eval.FinishNoAnswer
	}
}
