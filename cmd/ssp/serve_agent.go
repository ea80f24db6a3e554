package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/serve"
)

func init() {
	register(command{name: "serve", summary: "serve models and their search agents over an OpenAI-compatible API, with a question page", run: runServe})
}

// builtinModelName names the embedded model in --model and in the API.
const builtinModelName = "builtin"

// modelSpec is one --model value: NAME=DIR, DIR (named after its folder),
// or builtin.
type modelSpec struct{ name, dir string }

func parseModelSpec(v string) (modelSpec, error) {
	name, dir, named := strings.Cut(v, "=")
	if !named {
		dir = v
		name = filepath.Base(filepath.Clean(v))
	}
	switch {
	case dir == "":
		return modelSpec{}, fmt.Errorf("--model %q: want NAME=DIR, DIR or %s", v, builtinModelName)
	case name == "" || strings.ContainsAny(name, " \t/"):
		return modelSpec{}, fmt.Errorf("--model %q: the name %q must be non-empty, without spaces or slashes", v, name)
	case strings.HasSuffix(name, serve.AgentSuffix):
		return modelSpec{}, fmt.Errorf("--model %q: the name %q may not end in %q, which names the agents", v, name, serve.AgentSuffix)
	}
	if dir == builtinModelName {
		dir = ""
	}
	return modelSpec{name: name, dir: dir}, nil
}

// serveOptions are the model settings shared by `ssp serve` and `ssp ask`:
// the solver options of `ssp eval` (index, agent bounds, prompts, backend).
type serveOptions struct {
	solver *modelSolverOptions
	set    map[string]bool
}

// loadServedModel resolves a model's defaults as `ssp eval` does (a
// training run's settings, a bootstrapped base's, the built-in model and
// index) and loads it for serving. who begins the notes.
func loadServedModel(ctx context.Context, who string, spec modelSpec, opts serveOptions, maxBatch, agentMaxBatch, queue int) (*serve.Model, func() error, error) {
	o := *opts.solver
	o.Model = spec.dir
	if err := modelDefaults(ctx, who, &o, nil, opts.set); err != nil {
		return nil, nil, err
	}
	s, err := loadSolver(o)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", spec.name, err)
	}
	eos, _ := generationTokens(o.Model, s.model.Config)
	for _, id := range s.tok.EOSTokenIDs() {
		if !slices.Contains(eos, id) {
			eos = append(eos, id)
		}
	}
	m, err := serve.NewModel(serve.ModelConfig{
		Name: spec.name, Generator: s.model, Tokenizer: s.tok, Searcher: s.searcher,
		Solver: s.prompts.Solver, PromptSet: s.prompts.Name, Agent: s.agentConfig(o),
		ChatEOS: eos, MaxContext: s.model.Config.MaxPositionEmbeddings,
		MaxBatch: maxBatch, AgentMaxBatch: agentMaxBatch, Queue: queue,
	})
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return m, s.close, nil
}

func runServe(ctx context.Context, args []string) error {
	defaults := serve.DefaultConfig()
	fs := newFlags("serve", "[--model NAME=DIR ...] [--index DIR | --retriever URL] [--addr 127.0.0.1:8080] [--api-key KEY]")
	var specs repeatedFlag
	fs.Var(&specs, "model", "a checkpoint to serve as NAME=DIR, or DIR (named after its folder), or "+builtinModelName+
		" (the embedded model); repeatable; each is also served as NAME"+serve.AgentSuffix+", its search agent (default: "+builtinModelName+")")
	solver := modelSolverFlags(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address; loopback by default, use 0.0.0.0:PORT to accept other machines (with --api-key)")
	apiKey := fs.String("api-key", "", "bearer token every /v1 request must send (default $SSP_API_KEY; empty: none)")
	maxBatch := fs.Int("max-batch", 16, "most chat requests of one model decoded together")
	agentMaxBatch := fs.Int("agent-max-batch", 0, "most agent questions of one model run together (0: 1 on the pure-Go CPU backend, where batched agent turns cost more than they share (docs/serve.md), else --max-batch)")
	queue := fs.Int("queue", 64, "requests per model that may wait for the next batch; more are refused with 503 and Retry-After")
	maxTokens := fs.Int("max-tokens", defaults.MaxTokens, "most new tokens a chat request may ask for")
	defaultMaxTokens := fs.Int("default-max-tokens", defaults.DefaultMaxTokens, "new tokens of a chat request that gives no max_tokens")
	maxBody := fs.String("max-body", "1MiB", "largest request body (bytes, or with KiB/MiB suffix)")
	shutdown := fs.Duration("shutdown-timeout", defaults.ShutdownTimeout, "on SIGTERM or SIGINT, how long to let requests in flight finish")
	if err := parseFlags(fs, args, oldSolverFlags); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (models are given with --model)", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	if *apiKey == "" {
		*apiKey = os.Getenv("SSP_API_KEY")
	}
	bodyBytes, err := parseByteSize(*maxBody)
	if err != nil {
		return fmt.Errorf("%w: --max-body: %v", errUsage, err)
	}
	switch {
	case *maxBatch < 1:
		return fmt.Errorf("%w: --max-batch %d: want at least 1", errUsage, *maxBatch)
	case *agentMaxBatch < 0:
		return fmt.Errorf("%w: --agent-max-batch %d: want 0 (the backend's default) or more", errUsage, *agentMaxBatch)
	case *queue < 0:
		return fmt.Errorf("%w: --queue %d: want 0 or more", errUsage, *queue)
	case *maxTokens < 1 || *defaultMaxTokens < 1:
		return fmt.Errorf("%w: --max-tokens %d and --default-max-tokens %d: want at least 1", errUsage, *maxTokens, *defaultMaxTokens)
	case *shutdown < 0:
		return fmt.Errorf("%w: --shutdown-timeout %v: want 0 or more", errUsage, *shutdown)
	}
	if *agentMaxBatch == 0 {
		*agentMaxBatch = *maxBatch
		if isGoBackend(solver.Backend) {
			*agentMaxBatch = 1
		}
	}
	if len(specs) == 0 {
		specs = repeatedFlag{builtinModelName}
	}
	var parsed []modelSpec
	for _, v := range specs {
		spec, err := parseModelSpec(v)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		for _, p := range parsed {
			if p.name == spec.name {
				return fmt.Errorf("%w: --model: two models named %q; name them with NAME=DIR", errUsage, spec.name)
			}
		}
		parsed = append(parsed, spec)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var models []*serve.Model
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for _, spec := range parsed {
		m, closeFn, err := loadServedModel(ctx, "serve: model "+spec.name, spec, serveOptions{solver: solver, set: set}, *maxBatch, *agentMaxBatch, *queue)
		if err != nil {
			for _, m := range models {
				m.Close(ctx)
			}
			return err
		}
		models = append(models, m)
		closers = append(closers, closeFn)
	}
	cfg := serve.Config{APIKey: *apiKey, MaxBodyBytes: bodyBytes, DefaultMaxTokens: min(*defaultMaxTokens, *maxTokens),
		MaxTokens: *maxTokens, ShutdownTimeout: *shutdown, Logger: log}
	srv, err := serve.NewServer(models, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		for _, m := range models {
			m.Close(ctx)
		}
		return fmt.Errorf("--addr %s: %w", *addr, err)
	}
	if host, _, _ := net.SplitHostPort(*addr); !isLoopback(host) && *apiKey == "" {
		log.Warn("listening beyond loopback without an API key: anyone who reaches the port can use the models (--api-key)", "addr", *addr)
	}
	base := "http://" + ln.Addr().String()
	names := make([]string, 0, 2*len(models))
	for _, m := range models {
		names = append(names, m.Name(), m.Name()+serve.AgentSuffix)
	}
	log.Info("serving", "page", base+"/", "api", base+"/v1", "models", strings.Join(names, ","),
		"max_batch", *maxBatch, "agent_max_batch", *agentMaxBatch, "queue", *queue, "api_key", *apiKey != "")
	fmt.Println(base + "/v1")
	start := time.Now()
	err = srv.Serve(ctx, ln)
	log.Info("stopped", "uptime", time.Since(start).Round(time.Second).String())
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// isLoopback reports whether a listen host accepts loopback connections
// only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
