package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/score"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

// AgentSuffix turns a model's name into the name of its search agent.
const AgentSuffix = "-agent"

// ModelConfig describes one checkpoint the server answers for.
type ModelConfig struct {
	// Name is the model's name in the API; its agent is Name+AgentSuffix.
	Name string
	// Generator samples continuations: a *model.Model, whose sessions keep
	// each trajectory's key/value cache between the agent's turns.
	Generator agent.Generator
	Tokenizer *tokenizer.Tokenizer
	// Searcher answers the agent's searches.
	Searcher search.Searcher
	// Solver renders a question as the system and user messages of the
	// solver prompt (selfplay.PromptSet.Solver); PromptSet names it.
	Solver    func(question string) (system, user string)
	PromptSet string
	// Agent is the agent loop as `ssp eval` runs it: final tag, bounds,
	// greedy decoding and EOS ids. Requests may override the sampling.
	Agent agent.Config
	// ChatEOS ends a plain chat completion (the checkpoint's generation
	// EOS ids and the tokenizer's).
	ChatEOS []int32
	// MaxContext bounds a prompt plus its new tokens (the model's
	// max_position_embeddings); 0 means no bound.
	MaxContext int
	// MaxBatch is the most requests decoded together.
	MaxBatch int
	// AgentMaxBatch is the most agent questions run together (0:
	// MaxBatch). The agent's later turns extend each trajectory's kept
	// cache with a chunk padded to the batch's longest, so on a CPU a
	// large agent batch can cost more than its questions one by one
	// (docs/serve.md measures it).
	AgentMaxBatch int
	// Queue is how many more requests may wait for the next batch; beyond
	// MaxBatch+Queue admitted requests, Submit answers ErrBusy.
	Queue int
}

// Errors of Submit.
var (
	ErrBusy   = errors.New("server busy: the request queue is full")
	ErrClosed = errors.New("model closed: the server is shutting down")
	// ErrContextLength: the prompt and the tokens asked for do not fit the
	// model's context.
	ErrContextLength = errors.New("context length exceeded")
)

// Model is a served checkpoint with its scheduler: requests wait in a
// bounded queue, and one worker runs them in batches through the engine.
//
// Batching is per batch, not per step: the engine sizes a batch's
// key/value cache when it prefills the batch's prompts, so a request that
// arrives while a batch decodes waits for the next batch, which takes
// every compatible waiting request at once (up to MaxBatch). A row that
// finishes, or whose client leaves, takes no more tokens; the batch ends
// when its last row does.
type Model struct {
	cfg ModelConfig
	// abort cancels the batch in progress: Close with an expired context.
	abortCtx context.Context
	abort    context.CancelFunc

	mu      sync.Mutex
	pending []*Job
	closing bool // no new jobs; the worker exits once pending is empty
	wake    chan struct{}
	stopped chan struct{}

	// admitted counts the jobs not yet released (waiting or running); only
	// Submit adds, under mu, so its check against the limit holds.
	admitted        atomic.Int64
	running         atomic.Int64 // rows of the batch in progress
	generatedTokens atomic.Int64
	searches        atomic.Int64
	lastRate        atomic.Uint64 // tokens/s of the last batch, as float64 bits
	metrics         *metrics      // nil until a Server adopts the model
}

// NewModel checks cfg and starts the model's worker.
func NewModel(cfg ModelConfig) (*Model, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("serve: model with no name")
	case strings.HasSuffix(cfg.Name, AgentSuffix):
		return nil, fmt.Errorf("serve: model name %q ends in %q, which names agents", cfg.Name, AgentSuffix)
	case strings.ContainsAny(cfg.Name, " \t\n/"):
		return nil, fmt.Errorf("serve: model name %q: want no spaces or slashes", cfg.Name)
	case cfg.Generator == nil || cfg.Tokenizer == nil:
		return nil, fmt.Errorf("serve: model %s: no generator or tokenizer", cfg.Name)
	case cfg.Searcher == nil || cfg.Solver == nil:
		return nil, fmt.Errorf("serve: model %s: no searcher or solver prompt for its agent", cfg.Name)
	case cfg.MaxBatch < 1 || cfg.AgentMaxBatch < 0:
		return nil, fmt.Errorf("serve: model %s: max batch %d and agent max batch %d, want at least 1 (0: the max batch for the agent)", cfg.Name, cfg.MaxBatch, cfg.AgentMaxBatch)
	case cfg.Queue < 0:
		return nil, fmt.Errorf("serve: model %s: queue %d, want 0 or more", cfg.Name, cfg.Queue)
	case cfg.Agent.MaxResponseTokens < 1 || cfg.Agent.MaxTurns < 1:
		return nil, fmt.Errorf("serve: model %s: agent bounds of %d turns and %d response tokens", cfg.Name, cfg.Agent.MaxTurns, cfg.Agent.MaxResponseTokens)
	}
	if cfg.AgentMaxBatch == 0 {
		cfg.AgentMaxBatch = cfg.MaxBatch
	}
	m := &Model{cfg: cfg, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	m.abortCtx, m.abort = context.WithCancel(context.Background())
	go m.work()
	return m, nil
}

// Name is the model's name in the API.
func (m *Model) Name() string { return m.cfg.Name }

// Tokenizer is the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.cfg.Tokenizer }

// AgentResponseTokens is the agent's response budget: generated tokens
// plus inserted search results.
func (m *Model) AgentResponseTokens() int { return m.cfg.Agent.MaxResponseTokens }

// Sampling is how a request draws its tokens.
type Sampling struct {
	Temperature float32 // <= 0: greedy
	TopP        float32 // 0 or 1: off
	TopK        int     // 0: off
	Seed        int64
}

// Request is one admitted piece of work.
type Request struct {
	// Agent runs Question through the search agent; otherwise Prompt (token
	// ids of a chat rendered by the template) is continued.
	Agent    bool
	Question string
	Prompt   []int32
	Sampling Sampling
	// MaxTokens bounds the new tokens of a chat completion, or the agent's
	// response tokens (0: the model's agent budget).
	MaxTokens int
	// Stop strings end a chat completion; they are not part of its text.
	Stop []string
	// IgnoreEOS lets a chat completion run on past the EOS token.
	IgnoreEOS bool
}

// Submit admits a request and queues it for the next batch, or answers
// ErrBusy when MaxBatch+Queue requests are already admitted. The job lives
// until its last event is read or ctx is done; a job whose ctx is done
// takes no more tokens.
func (m *Model) Submit(ctx context.Context, r Request) (*Job, error) {
	j := &Job{m: m, ctx: ctx, req: r, ready: make(chan struct{}, 1), submitted: time.Now()}
	if r.Agent {
		if strings.TrimSpace(r.Question) == "" {
			return nil, errors.New("serve: empty question")
		}
		p, err := eval.SolverPrompt(m.cfg.Tokenizer, m.cfg.Solver, r.Question)
		if err != nil {
			return nil, fmt.Errorf("serve: model %s: solver prompt: %w", m.cfg.Name, err)
		}
		j.prompt = p
		if j.req.MaxTokens <= 0 {
			j.req.MaxTokens = m.cfg.Agent.MaxResponseTokens
		}
		if c := m.cfg.MaxContext; c > 0 && len(p)+j.req.MaxTokens > c {
			return nil, fmt.Errorf("%w: the question's prompt of %d tokens and the agent's %d response tokens exceed the model's context of %d tokens",
				ErrContextLength, len(p), j.req.MaxTokens, c)
		}
		j.text = tokenizer.NewTextStream(m.cfg.Tokenizer.Decode)
	} else {
		if len(r.Prompt) == 0 || r.MaxTokens < 1 {
			return nil, fmt.Errorf("serve: chat request with %d prompt tokens and %d new tokens", len(r.Prompt), r.MaxTokens)
		}
		if c := m.cfg.MaxContext; c > 0 && len(r.Prompt)+r.MaxTokens > c {
			return nil, fmt.Errorf("%w: %d prompt tokens and %d new ones exceed the model's context of %d tokens", ErrContextLength, len(r.Prompt), r.MaxTokens, c)
		}
		j.prompt = r.Prompt
		j.content = newContentStream(m.cfg.Tokenizer.DecodeSkipSpecial, r.Stop)
	}
	m.mu.Lock()
	switch {
	case m.closing:
		m.mu.Unlock()
		return nil, ErrClosed
	case m.admitted.Load() >= int64(m.cfg.MaxBatch+m.cfg.Queue):
		m.mu.Unlock()
		return nil, ErrBusy
	}
	m.admitted.Add(1)
	m.pending = append(m.pending, j)
	m.mu.Unlock()
	m.signal()
	return j, nil
}

func (m *Model) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// QueueDepth is the number of admitted requests waiting for a batch.
func (m *Model) QueueDepth() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}

// Close stops admitting requests, lets the waiting and running ones finish
// and stops the worker. When ctx ends first, the batch in progress is
// cancelled and Close returns ctx's error once the worker has stopped.
func (m *Model) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.signal()
	select {
	case <-m.stopped:
		m.abort()
		return nil
	case <-ctx.Done():
		m.abort()
		m.mu.Lock()
		for _, j := range m.pending {
			j.finish(nil, ctx.Err())
		}
		m.pending = nil
		m.mu.Unlock()
		<-m.stopped
		return ctx.Err()
	}
}

// work runs batches until the model is closed and nothing waits.
func (m *Model) work() {
	defer close(m.stopped)
	for {
		batch := m.nextBatch()
		if batch == nil {
			return
		}
		m.running.Store(int64(len(batch)))
		start := time.Now()
		var tokens int
		if batch[0].req.Agent {
			tokens = m.runAgent(batch)
		} else {
			tokens = m.runChat(batch)
		}
		elapsed := time.Since(start)
		m.running.Store(0)
		if elapsed > 0 {
			m.lastRate.Store(math.Float64bits(float64(tokens) / elapsed.Seconds()))
		}
		m.metrics.observeBatch(m.cfg.Name, batch[0].req.Agent, len(batch), elapsed)
	}
}

// nextBatch waits for work and takes the oldest waiting request with every
// later one that can share its batch. It returns nil once the model is
// closing and nothing waits. Requests whose client has left are dropped.
func (m *Model) nextBatch() []*Job {
	for {
		m.mu.Lock()
		live := m.pending[:0]
		for _, j := range m.pending {
			if j.cancelled() {
				j.finish(nil, j.ctx.Err())
				continue
			}
			live = append(live, j)
		}
		clear(m.pending[len(live):])
		m.pending = live
		if len(m.pending) > 0 {
			first := m.pending[0]
			limit := m.cfg.MaxBatch
			if first.req.Agent {
				limit = m.cfg.AgentMaxBatch
			}
			batch := []*Job{first}
			rest := m.pending[:0]
			for _, j := range m.pending[1:] {
				if len(batch) < limit && first.batchesWith(j) {
					batch = append(batch, j)
				} else {
					rest = append(rest, j)
				}
			}
			clear(m.pending[len(rest):])
			m.pending = rest
			m.mu.Unlock()
			return batch
		}
		closing := m.closing
		m.mu.Unlock()
		if closing {
			return nil
		}
		<-m.wake
	}
}

// batchesWith reports whether two requests can run in one batch: chat
// completions with the same EOS handling (the engine's EOS ids are per
// batch), or agent questions with the same response budget (the agent
// loop's bound is per batch). Sampling settings and stop strings are per
// row.
func (j *Job) batchesWith(o *Job) bool {
	if j.req.Agent != o.req.Agent {
		return false
	}
	if j.req.Agent {
		return j.req.MaxTokens == o.req.MaxTokens
	}
	return j.req.IgnoreEOS == o.req.IgnoreEOS
}

// runChat continues a batch of chat prompts in one generate call and
// returns the tokens generated.
func (m *Model) runChat(batch []*Job) int {
	req := model.GenerateRequest{
		Prompts: make([][]int32, len(batch)),
		Rows:    make([]model.RowSettings, len(batch)),
		Decode:  m.cfg.Tokenizer.Decode,
	}
	if !batch[0].req.IgnoreEOS {
		req.EOSTokenIDs = m.cfg.ChatEOS
	}
	for i, j := range batch {
		s := j.req.Sampling
		req.Prompts[i] = j.prompt
		req.MaxNewTokens = max(req.MaxNewTokens, j.req.MaxTokens)
		req.Rows[i] = model.RowSettings{Temperature: s.Temperature, TopP: s.TopP, TopK: s.TopK, Seed: s.Seed,
			MaxNewTokens: j.req.MaxTokens, StopStrings: j.req.Stop, Cancelled: j.cancelled}
	}
	var tokens atomic.Int64
	req.OnToken = func(i int, id int32) {
		tokens.Add(1)
		m.generatedTokens.Add(1)
		batch[i].push(item{token: id, isToken: true})
	}
	gens, err := m.cfg.Generator.Generate(m.abortCtx, req)
	for i, j := range batch {
		if err != nil {
			j.finish(nil, fmt.Errorf("generate: %w", err))
			continue
		}
		g := gens[i]
		finish := "stop"
		if g.FinishReason == model.FinishLength {
			finish = "length"
		}
		j.finish(&Result{FinishReason: finish, PromptTokens: len(j.prompt), CompletionTokens: len(g.Tokens)}, nil)
	}
	return int(tokens.Load())
}

// runAgent plays a batch of questions through the agent loop, with the
// model's agent settings and each request's sampling, and returns the
// tokens generated.
func (m *Model) runAgent(batch []*Job) int {
	cfg := m.cfg.Agent
	cfg.MaxResponseTokens = batch[0].req.MaxTokens
	cfg.Trajectories = make([]agent.TrajectorySettings, len(batch))
	prompts := make([][]int32, len(batch))
	for i, j := range batch {
		s := j.req.Sampling
		prompts[i] = j.prompt
		cfg.Trajectories[i] = agent.TrajectorySettings{Temperature: s.Temperature, TopP: s.TopP, TopK: s.TopK,
			Seed: s.Seed, Cancelled: j.cancelled}
	}
	var tokens atomic.Int64
	cfg.OnToken = func(i int, id int32) {
		tokens.Add(1)
		m.generatedTokens.Add(1)
		batch[i].push(item{token: id, isToken: true})
	}
	cfg.OnSearch = func(i int, call agent.SearchCall, inserted string) {
		m.searches.Add(1)
		batch[i].push(item{search: &call, inserted: inserted})
	}
	trajs, err := agent.Run(m.abortCtx, m.cfg.Generator, m.cfg.Tokenizer, m.cfg.Searcher, prompts, cfg)
	for i, j := range batch {
		if err != nil {
			j.finish(nil, err)
			continue
		}
		t := trajs[i]
		// As eval grades it: only the model's own text holds its answer.
		answer, _ := score.ExtractAnswer(t.Generated)
		finish := "stop"
		switch t.Finish {
		case agent.FinishLength, agent.FinishTurnLength, agent.FinishTurnLimit:
			finish = "length"
		}
		j.finish(&Result{
			Content: answer, FinishReason: finish,
			PromptTokens: t.PromptLen, CompletionTokens: t.GeneratedTokens,
			InsertedTokens: len(t.Tokens) - t.PromptLen - t.GeneratedTokens,
			Trajectory:     t.Response, Searches: t.Searches, AgentFinish: t.Finish, Turns: t.Turns,
		}, nil)
	}
	return int(tokens.Load())
}
