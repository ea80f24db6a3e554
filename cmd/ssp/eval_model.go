package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/bootstrap"
	"github.com/ssp-project/ssp/internal/builtin"
	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

func init() { modelSolver = newModelSolver }

// modelSolverOptions configure the solver agent of `ssp eval --model`: the
// same multi-turn search loop and prompt the trainer uses, decoded greedily.
type modelSolverOptions struct {
	Model               string
	Adapter             string // PEFT LoRA adapter loaded onto Model; "" for none
	Index               string
	Retriever           string
	Ranking             *rankingOptions // how Index ranks: bm25, dense or hybrid (nil: bm25)
	Backend             string
	MaxTurns            int
	MaxTokensPerTurn    int
	MaxResponseTokens   int
	TopK                int
	MaxInformationChars int
	Prompts             string
	// OnToken is called for every token the model generates (progress).
	OnToken func()
	// Builtin is set when the model is the embedded built-in one.
	Builtin bool
}

// settings are the solver's settings as recorded in a run's provenance.
func (o *modelSolverOptions) settings() map[string]any {
	backend := o.Backend
	if backend == "" {
		backend = cmp.Or(os.Getenv("GOMLX_BACKEND"), "go")
	}
	settings := map[string]any{
		"backend": backend, "decoding": "greedy", "max_turns": o.MaxTurns, "max_tokens_per_turn": o.MaxTokensPerTurn,
		"max_response_tokens": o.MaxResponseTokens, "topk": o.TopK, "max_information_chars": o.MaxInformationChars, "prompts": o.Prompts,
	}
	if o.Adapter != "" {
		settings["adapter"] = o.Adapter
	}
	if o.Ranking != nil && o.Ranking.Ranking != "bm25" && o.Retriever == "" {
		settings["ranking"] = o.Ranking.Ranking
		if o.Ranking.Ranking == "hybrid" {
			settings["fusion"] = o.Ranking.Fusion
			settings["dense_weight"] = o.Ranking.DenseWeight
		}
	}
	return settings
}

// isGoBackend reports whether a --backend value (empty: $GOMLX_BACKEND,
// then go) selects the pure-Go CPU backend.
func isGoBackend(flagValue string) bool {
	b := cmp.Or(flagValue, os.Getenv("GOMLX_BACKEND"), "go")
	return b == "go" || strings.HasPrefix(b, "go:")
}

// oldSolverFlags are the former names of the solver flags, before they
// took the names of the training config's keys; still accepted, with a note.
var oldSolverFlags = map[string]string{
	"max-turns": "agent.max_turns", "max-tokens-per-turn": "agent.max_tokens_per_turn",
	"max-response-tokens": "agent.max_response_tokens", "topk": "agent.top_k",
	"max-information-chars": "agent.max_information_chars", "prompts": "game.prompts",
}

// cpuAgentBounds are the solver bounds `ssp eval --model` uses on the
// pure-Go backend when neither flags nor a training run set them: a few
// short turns and short search results, so that a 135M-parameter model
// answers a few questions in minutes on a laptop CPU instead of the hour
// the training defaults (10 turns, 8,192 response tokens, 3,000 characters
// of results per search) can take. XLA backends keep the training defaults.
var cpuAgentBounds = struct{ MaxTurns, MaxTokensPerTurn, MaxResponseTokens, MaxInformationChars int }{3, 64, 384, 800}

func modelSolverFlags(fs *pflag.FlagSet) *modelSolverOptions {
	agentDefaults := selfplay.DefaultConfig().Agent
	o := &modelSolverOptions{}
	fs.StringVar(&o.Adapter, "adapter", "", "PEFT LoRA adapter directory loaded onto --model (a LoRA run's checkpoint: then the run's settings apply as for a full checkpoint)")
	fs.StringVar(&o.Index, "index", "", "BM25 index directory the solver searches (with --model)")
	fs.StringVar(&o.Retriever, "retriever", "", "URL of a Search-R1-compatible /retrieve server (instead of --index)")
	o.Ranking = addRankingFlags(fs)
	fs.StringVar(&o.Backend, "backend", "", backendHelp)
	fs.IntVar(&o.MaxTurns, "agent.max_turns", agentDefaults.MaxTurns, "model turns per question (each search ends a turn)")
	fs.IntVar(&o.MaxTokensPerTurn, "agent.max_tokens_per_turn", agentDefaults.MaxTokensPerTurn, "most tokens generated per turn; a cut turn is continued by the next (0 = no bound but --agent.max_response_tokens)")
	fs.IntVar(&o.MaxResponseTokens, "agent.max_response_tokens", agentDefaults.MaxResponseTokens, "tokens after the prompt, generated and inserted")
	fs.IntVar(&o.TopK, "agent.top_k", agentDefaults.TopK, "documents per search call")
	fs.IntVar(&o.MaxInformationChars, "agent.max_information_chars", agentDefaults.MaxInformationChars, "characters of search results inserted per call (0: no bound)")
	fs.StringVar(&o.Prompts, "game.prompts", selfplay.DefaultConfig().Game.Prompts, "solver prompt wording: ssp-short, ssp or minimal (default: the training run's game.prompts)")
	return o
}

// trainingRunOf returns the run directory a checkpoint belongs to
// (RUN/checkpoints/step-N with RUN/config.yaml), or "".
func trainingRunOf(checkpoint string) string {
	abs := filepath.Clean(checkpoint)
	if filepath.Base(filepath.Dir(abs)) != "checkpoints" {
		return ""
	}
	run := filepath.Dir(filepath.Dir(abs))
	if _, err := os.Stat(filepath.Join(run, "config.yaml")); err != nil {
		return ""
	}
	return run
}

// modelEvalDefaults completes the options of `ssp eval` with a model (or
// none): no --model is the built-in model; a checkpoint of a training run
// takes the run's index or retriever, prompts, agent bounds and
// run.eval_data; what is still missing comes from the built-in default
// (index and held-out benchmark). Flags given always win, and every
// default taken is named on stderr.
func modelEvalDefaults(ctx context.Context, o *modelSolverOptions, data *repeatedFlag, set map[string]bool) error {
	return modelDefaults(ctx, "eval", o, data, set)
}

// modelDefaults completes the solver options of a command that runs a
// model's agent (eval, serve, ask) as modelEvalDefaults says; who begins
// each note, and a nil data takes no eval data.
func modelDefaults(ctx context.Context, who string, o *modelSolverOptions, data *repeatedFlag, set map[string]bool) error {
	agentSet := set["agent.max_turns"] || set["agent.max_tokens_per_turn"] || set["agent.max_response_tokens"] || set["agent.top_k"] || set["agent.max_information_chars"]
	searchSet := set["index"] || set["retriever"]
	setAgent := func(a selfplay.AgentConfig) {
		if !set["agent.max_turns"] {
			o.MaxTurns = a.MaxTurns
		}
		if !set["agent.max_tokens_per_turn"] {
			o.MaxTokensPerTurn = a.MaxTokensPerTurn
		}
		if !set["agent.max_response_tokens"] {
			o.MaxResponseTokens = a.MaxResponseTokens
		}
		if !set["agent.top_k"] {
			o.TopK = a.TopK
		}
		if !set["agent.max_information_chars"] {
			o.MaxInformationChars = a.MaxInformationChars
		}
	}
	var builtinPaths *builtin.Paths
	prepare := func() (*builtin.Paths, error) {
		if builtinPaths != nil {
			return builtinPaths, nil
		}
		p, err := prepareBuiltin(ctx)
		if err != nil {
			return nil, err
		}
		builtinPaths = &p
		return builtinPaths, nil
	}

	fromRun := false
	run := trainingRunOf(o.Model)
	if o.Adapter != "" && run == "" {
		run = trainingRunOf(o.Adapter) // the checkpoint of a LoRA run
	}
	switch {
	case o.Model == "":
		p, err := prepare()
		if err != nil {
			return err
		}
		cfg := selfplay.DefaultConfig()
		builtin.TrainConfig(&cfg)
		o.Model, o.Builtin = p.Model, true
		setAgent(cfg.Agent)
		if !set["game.prompts"] {
			o.Prompts = cfg.Game.Prompts // the prompts it was bootstrapped on
		}
		fromRun = true // the built-in model's own bounds
		note(who+": no --model: the built-in model (%s)", p.Model)
	case run != "":
		cfg, err := selfplay.LoadConfig(filepath.Join(run, "config.yaml"))
		if err != nil {
			return fmt.Errorf("--model %s: its training run: %w", o.Model, err)
		}
		fromRun = true
		setAgent(cfg.Agent)
		var took []string
		if !searchSet && (cfg.Run.Index != "" || cfg.Run.Retriever != "") {
			o.Index, o.Retriever = cfg.Run.Index, cfg.Run.Retriever
			searchSet = true
			took = append(took, "search "+cmp.Or(cfg.Run.Index, cfg.Run.Retriever))
			if !set["ranking"] && cfg.Run.Ranking != "" && cfg.Run.Index != "" && o.Ranking != nil {
				o.Ranking.Ranking = cfg.Run.Ranking
				if !set["query-encoder"] {
					o.Ranking.Encoder = cfg.Run.Encoder
				}
				took = append(took, "ranking "+cfg.Run.Ranking)
			}
		}
		if !set["game.prompts"] && cfg.Game.Prompts != "" {
			o.Prompts = cfg.Game.Prompts
			took = append(took, "prompts "+o.Prompts)
		}
		if !set["backend"] && cfg.Run.Backend != "" {
			o.Backend = cfg.Run.Backend
			took = append(took, "backend "+o.Backend)
		}
		if data != nil && len(*data) == 0 && cfg.Run.EvalData != "" {
			*data = append(*data, cfg.Run.EvalData)
			took = append(took, "data "+cfg.Run.EvalData)
		}
		if !agentSet {
			took = append(took, "its agent bounds")
		}
		note(who+": settings of the training run %s: %s", filepath.Join(run, "config.yaml"), strings.Join(took, ", "))
	default:
		// A base made by `ssp world bootstrap` records the prompts and
		// agent settings its episodes used: it is evaluated with them.
		rep, ok, err := bootstrap.ReadReport(o.Model)
		if err != nil {
			return fmt.Errorf("--model %s: %w", o.Model, err)
		}
		if !ok {
			break
		}
		b := rep.Options
		fromRun = true
		setAgent(selfplay.AgentConfig{MaxTurns: b.MaxTurns, MaxTokensPerTurn: b.MaxTokensPerTurn,
			MaxResponseTokens: b.MaxResponseTokens, TopK: b.TopK, MaxInformationChars: b.MaxInformationChars})
		if !set["game.prompts"] && b.Prompts != "" {
			o.Prompts = b.Prompts
		}
		note(who+": settings the model was bootstrapped with (%s): prompts %s, top_k %d, %d characters of results, %d turns of %d tokens",
			filepath.Join(o.Model, bootstrap.ReportFile), o.Prompts, o.TopK, o.MaxInformationChars, o.MaxTurns, o.MaxTokensPerTurn)
	}
	if !searchSet {
		p, err := prepare()
		if err != nil {
			return err
		}
		o.Index = p.Index
		note(who+": no --index or --retriever: the built-in index (%s)", p.Index)
	}
	if data != nil && len(*data) == 0 {
		p, err := prepare()
		if err != nil {
			return err
		}
		*data = append(*data, p.Benchmark)
		note(who+": no --data: the built-in held-out benchmark (%s)", p.Benchmark)
	}
	if !fromRun && !agentSet && isGoBackend(o.Backend) {
		b := cpuAgentBounds
		o.MaxTurns, o.MaxTokensPerTurn, o.MaxResponseTokens, o.MaxInformationChars = b.MaxTurns, b.MaxTokensPerTurn, b.MaxResponseTokens, b.MaxInformationChars
		note(who+": pure-Go CPU backend: at most %d turns of %d tokens, %d response tokens, %d characters of results per search (--agent.max_turns, --agent.max_tokens_per_turn, --agent.max_response_tokens, --agent.max_information_chars to change)",
			o.MaxTurns, o.MaxTokensPerTurn, o.MaxResponseTokens, o.MaxInformationChars)
	}
	return nil
}

func newModelSolver(ctx context.Context, o modelSolverOptions) (eval.SolveFunc, func() error, error) {
	s, err := loadSolver(o)
	if err != nil {
		return nil, nil, err
	}
	cfg := s.agentConfig(o)
	if o.OnToken != nil {
		cfg.OnToken = func(int, int32) { o.OnToken() }
	}
	return eval.AgentSolver(s.model, s.tok, s.searcher, s.prompts.Solver, cfg), s.close, nil
}

// loadedSolver is what the solver agent of a model runs with.
type loadedSolver struct {
	model    *model.Model
	tok      *tokenizer.Tokenizer
	searcher search.Searcher
	prompts  selfplay.PromptSet
	close    func() error
}

// loadSolver loads the checkpoint, its tokenizer, the prompt set and the
// search engine of the solver options.
func loadSolver(o modelSolverOptions) (*loadedSolver, error) {
	if o.Index == "" && o.Retriever == "" {
		return nil, fmt.Errorf("%w: --model needs --index or --retriever to search", errUsage)
	}
	if o.Prompts == "" {
		o.Prompts = selfplay.DefaultConfig().Game.Prompts
	}
	prompts, err := selfplay.Prompts(o.Prompts)
	if err != nil {
		return nil, fmt.Errorf("%w: --game.prompts: %v", errUsage, err)
	}
	tok, err := tokenizer.Load(o.Model)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var searcher search.Searcher
	closeSearcher := func() error { return nil }
	if o.Retriever != "" {
		c, err := search.NewClient(o.Retriever, search.DefaultClientOptions())
		if err != nil {
			return nil, err
		}
		searcher = c
	} else {
		ranking := rankingOptions{Ranking: "bm25", DenseWeight: 0.5}
		if o.Ranking != nil {
			ranking = *o.Ranking
		}
		s, _, closeIndex, err := ranking.open(o.Index, o.Backend)
		if err != nil {
			return nil, err
		}
		searcher, closeSearcher = s, closeIndex
	}
	m, err := loadModel(o.Model, o.Adapter, model.LoadOptions{Backend: o.Backend})
	if err != nil {
		closeSearcher()
		return nil, err
	}
	return &loadedSolver{model: m, tok: tok, searcher: searcher, prompts: prompts, close: func() error {
		m.Close()
		return closeSearcher()
	}}, nil
}

// agentConfig is the solver's agent loop as training runs it: the answer
// tag, search on, the options' bounds, greedy decoding.
func (s *loadedSolver) agentConfig(o modelSolverOptions) agent.Config {
	return agent.Config{
		FinalTag: "answer", Search: true,
		MaxTurns: o.MaxTurns, MaxTokensPerTurn: o.MaxTokensPerTurn, MaxResponseTokens: o.MaxResponseTokens,
		TopK: o.TopK, MaxInformationChars: o.MaxInformationChars,
		Temperature: 0, EOSTokenIDs: s.tok.EOSTokenIDs(),
	}
}
