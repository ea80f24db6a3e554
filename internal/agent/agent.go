// Package agent runs the multi-turn search loop shared by the self-play
// trainer and the evaluator: the policy thinks, calls the search engine with
// <search>query</search>, reads the results the loop inserts as
// <information>…</information>, and ends with a final tag (<answer> for the
// solver, <question> for the proposer).
//
// Token ids in, token ids out: generated tokens are kept exactly as sampled
// and inserted search results are encoded once and appended as ids, so the
// loss mask and the sampling log-probs line up with the sequence the
// trainer sees.
package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/search"
)

// Generator samples continuations; *model.Model implements it.
type Generator interface {
	Generate(ctx context.Context, req model.GenerateRequest) ([]model.Generation, error)
}

// sessionStarter is a Generator that can keep each sequence's key/value
// cache between calls (*model.Model): a turn then runs only the tokens
// added since the previous one instead of re-encoding the whole prefix.
type sessionStarter interface {
	NewSession() *model.Session
}

// Tokenizer maps text to token ids and back; *tokenizer.Tokenizer implements it.
type Tokenizer interface {
	Encode(text string) []int32
	Decode(ids []int32) string
}

// FinishReason says why a trajectory ended.
type FinishReason string

// Finish reasons. A trajectory that ends with its role's final tag reports
// the tag's name ("answer" or "question").
const (
	FinishAnswer    FinishReason = "answer"     // closed an <answer> tag
	FinishQuestion  FinishReason = "question"   // closed a <question> tag
	FinishTurnLimit FinishReason = "turn_limit" // still searching after the last allowed turn
	// FinishTurnLength: the last allowed turn was cut at MaxTokensPerTurn
	// while the policy was still writing (a cut turn before it continues).
	FinishTurnLength FinishReason = "turn_length"
	FinishLength     FinishReason = "length" // ran out of response tokens (MaxResponseTokens)
	FinishNoTag      FinishReason = "no_tag" // stopped (EOS) without a search call or a final tag
	// FinishCancelled: the trajectory's TrajectorySettings.Cancelled
	// reported true (a server's client went away).
	FinishCancelled FinishReason = "cancelled"
)

// Config bounds one batch of trajectories.
type Config struct {
	// FinalTag ends a trajectory when its closing tag is generated:
	// "answer" for the solver, "question" for the proposer.
	FinalTag string
	// Search enables <search> calls; when false, "</search>" is not a stop
	// string and a trajectory is a single turn (RAG answering).
	Search bool
	// MaxTurns bounds the model turns (generate calls) per trajectory.
	MaxTurns int
	// MaxTokensPerTurn bounds each generate call; 0 means no bound but the
	// response budget. A turn cut at the bound is not an end: the next turn
	// continues the text where it stopped (nothing is inserted), while
	// turns and response tokens remain.
	MaxTokensPerTurn int
	// MaxResponseTokens bounds everything after the prompt: generated
	// tokens plus inserted search results.
	MaxResponseTokens int
	// TopK is the number of documents per search call.
	TopK int
	// MaxInformationChars bounds the characters of formatted search results
	// inserted per call (0 = no bound).
	MaxInformationChars int
	// Sampling.
	Temperature float32
	TopP        float32
	TopKTokens  int
	Seed        int64
	EOSTokenIDs []int32
	// OnToken, when set, is called with every sampled token of trajectory
	// i (an index into the prompts), as it is sampled: for progress.
	OnToken func(i int, token int32)
	// OnSearch, when set, is called for each search call of trajectory i
	// once its results are known, with the text inserted after it ("" when
	// the trajectory ran out of room before the results): for showing a
	// trajectory as it unfolds.
	OnSearch func(i int, call SearchCall, inserted string)
	// Trajectories, when set, holds one entry per prompt that replaces
	// Temperature, TopP, TopKTokens and Seed for that trajectory and may
	// cancel it: a server runs the questions of several clients, each with
	// its own settings, as one batch.
	Trajectories []TrajectorySettings
}

// TrajectorySettings are one trajectory's own sampling settings.
type TrajectorySettings struct {
	Temperature float32
	TopP        float32
	TopK        int
	Seed        int64
	// Cancelled, when set, ends the trajectory (FinishCancelled) as soon as
	// it reports true: between turns, and between the tokens of a turn
	// with a generator that polls model.RowSettings.Cancelled.
	Cancelled func() bool
}

// SearchCall is one search the policy issued and the documents it was
// shown (none when the trajectory ran out of room before the results), cut
// as the inserted text cut them (search.VisibleHits): the RAG check reads
// these, so it sees no more than the proposer did.
type SearchCall struct {
	Query     string            `json:"query"`
	Documents []search.Document `json:"documents"`
}

// Trajectory is one finished rollout. Tokens, LossMask and LogProbs have the
// same length; entries for the prompt and for inserted search results have
// mask 0 and log-prob 0.
type Trajectory struct {
	Tokens    []int32
	PromptLen int
	LossMask  []float32
	LogProbs  []float32
	// Response is the decoded text after the prompt (generated text and
	// inserted information), for parsing and logging.
	Response string
	// Generated is the text the policy wrote, turn by turn, without the
	// inserted information (for counting tags the model produced).
	Generated string
	Searches  []SearchCall
	Turns     int
	// GeneratedTokens counts the tokens the policy sampled.
	GeneratedTokens int
	Finish          FinishReason
}

// Queries returns the search queries in the order they were issued.
func (t *Trajectory) Queries() []string {
	qs := make([]string, len(t.Searches))
	for i, s := range t.Searches {
		qs[i] = s.Query
	}
	return qs
}

// Documents returns every retrieved document once, in retrieval order.
func (t *Trajectory) Documents() []search.Document {
	seen := map[string]bool{}
	var docs []search.Document
	for _, s := range t.Searches {
		for _, d := range s.Documents {
			key := d.ID + "\x00" + d.Contents
			if !seen[key] {
				seen[key] = true
				docs = append(docs, d)
			}
		}
	}
	return docs
}

func (c Config) validate(searcher search.Searcher) error {
	switch {
	case c.FinalTag == "":
		return fmt.Errorf("agent: FinalTag is empty")
	case c.MaxTurns < 1:
		return fmt.Errorf("agent: MaxTurns %d < 1", c.MaxTurns)
	case c.MaxTokensPerTurn < 0:
		return fmt.Errorf("agent: MaxTokensPerTurn %d < 0", c.MaxTokensPerTurn)
	case c.MaxResponseTokens < 1:
		return fmt.Errorf("agent: MaxResponseTokens %d < 1", c.MaxResponseTokens)
	case c.Search && searcher == nil:
		return fmt.Errorf("agent: Search is enabled but no searcher was given")
	case c.Search && c.TopK < 1:
		return fmt.Errorf("agent: TopK %d < 1", c.TopK)
	}
	return nil
}

// cancelled reports whether trajectory i was cancelled.
func (c Config) cancelled(i int) bool {
	return c.Trajectories != nil && c.Trajectories[i].Cancelled != nil && c.Trajectories[i].Cancelled()
}

// Run plays every prompt to the end. Each turn generates for all active
// trajectories in one batch and answers all their search calls in one
// batched Search. The result has one trajectory per prompt, in order.
// With a model that keeps caches between calls, a turn after the first
// runs only each trajectory's new tokens (its last sampled token and the
// inserted results); the rest is read from the cache.
func Run(ctx context.Context, gen Generator, tok Tokenizer, searcher search.Searcher, prompts [][]int32, cfg Config) ([]Trajectory, error) {
	if err := cfg.validate(searcher); err != nil {
		return nil, err
	}
	if cfg.Trajectories != nil && len(cfg.Trajectories) != len(prompts) {
		return nil, fmt.Errorf("agent: %d trajectory settings for %d prompts", len(cfg.Trajectories), len(prompts))
	}
	if m, ok := gen.(sessionStarter); ok {
		sess := m.NewSession()
		defer sess.Close()
		gen = sess
	}
	finalStop := "</" + cfg.FinalTag + ">"
	stops := []string{finalStop}
	if cfg.Search {
		stops = append(stops, "</search>")
	}

	trajs := make([]Trajectory, len(prompts))
	// segment[i] is the text trajectory i generated since its last inserted
	// results: one turn, or several when turns were cut at MaxTokensPerTurn
	// (a stop string may straddle the cut).
	segment := make([]string, len(prompts))
	active := make([]int, 0, len(prompts))
	for i, p := range prompts {
		trajs[i] = Trajectory{
			Tokens:    append([]int32(nil), p...),
			PromptLen: len(p),
			LossMask:  make([]float32, len(p)),
			LogProbs:  make([]float32, len(p)),
		}
		active = append(active, i)
	}

	for turn := 1; len(active) > 0; turn++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if cfg.Trajectories != nil {
			next := active[:0]
			for _, i := range active {
				if cfg.cancelled(i) {
					trajs[i].Finish = FinishCancelled
				} else {
					next = append(next, i)
				}
			}
			if active = next; len(active) == 0 {
				break
			}
		}
		// Generate one turn for every active trajectory.
		req := model.GenerateRequest{
			Prompts:     make([][]int32, len(active)),
			Temperature: cfg.Temperature,
			TopP:        cfg.TopP,
			TopK:        cfg.TopKTokens,
			Seed:        cfg.Seed + int64(turn)*1_000_003,
			StopStrings: stops,
			Decode:      tok.Decode,
			EOSTokenIDs: cfg.EOSTokenIDs,
		}
		if cfg.OnToken != nil {
			batch := slices.Clone(active)
			req.OnToken = func(j int, tok int32) { cfg.OnToken(batch[j], tok) }
		}
		for j, i := range active {
			req.Prompts[j] = trajs[i].Tokens
			req.MaxNewTokens = max(req.MaxNewTokens, trajs[i].turnBudget(cfg))
		}
		if cfg.Trajectories != nil {
			req.Rows = make([]model.RowSettings, len(active))
			for j, i := range active {
				ts := cfg.Trajectories[i]
				req.Rows[j] = model.RowSettings{Temperature: ts.Temperature, TopP: ts.TopP, TopK: ts.TopK,
					Seed: ts.Seed + int64(turn)*1_000_003, MaxNewTokens: trajs[i].turnBudget(cfg), Cancelled: ts.Cancelled}
			}
		}
		gens, err := gen.Generate(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("agent: turn %d: generate: %w", turn, err)
		}
		if len(gens) != len(active) {
			return nil, fmt.Errorf("agent: turn %d: generate returned %d continuations for %d prompts", turn, len(gens), len(active))
		}

		// Classify each continuation: final tag, search call, or an end.
		var searching []int
		var queries []string
		for j, i := range active {
			t := &trajs[i]
			g := gens[j]
			if len(g.LogProbs) != len(g.Tokens) {
				return nil, fmt.Errorf("agent: turn %d: %d log-probs for %d tokens", turn, len(g.LogProbs), len(g.Tokens))
			}
			budget := t.turnBudget(cfg)
			truncated := len(g.Tokens) > budget
			tokens, logProbs := g.Tokens, g.LogProbs
			if truncated {
				tokens, logProbs = tokens[:budget], logProbs[:budget]
			}
			text := tok.Decode(tokens)
			if prev := segment[i]; prev != "" && firstStop(text, stops) == "" && firstStop(prev+text, stops) != "" {
				// A stop string straddles the cut, so generation ran past
				// it: keep the turn up to the stop, where an uncut turn
				// would have ended.
				for k := 1; k <= len(tokens); k++ {
					if firstStop(prev+tok.Decode(tokens[:k]), stops) != "" {
						tokens, logProbs = tokens[:k], logProbs[:k]
						text = tok.Decode(tokens)
						break
					}
				}
			}
			t.appendGenerated(tokens, logProbs)
			t.Turns = turn
			t.Generated += text
			segment[i] += text
			switch stop := firstStop(segment[i], stops); {
			case g.FinishReason == model.FinishCancelled:
				t.Finish = FinishCancelled
			case stop == finalStop:
				t.Finish = FinishReason(cfg.FinalTag)
			case stop == "</search>":
				query, ok := LastTagBody(segment[i], "search")
				switch {
				case !ok || query == "":
					t.Finish = FinishNoTag
				case turn >= cfg.MaxTurns:
					t.Finish = FinishTurnLimit
				default:
					searching = append(searching, i)
					queries = append(queries, query)
				}
			case !truncated && g.FinishReason != model.FinishLength:
				t.Finish = FinishNoTag // EOS
			case t.remaining(cfg) == 0:
				t.Finish = FinishLength
			case turn >= cfg.MaxTurns:
				t.Finish = FinishTurnLength
			default:
				// Cut at MaxTokensPerTurn: the next turn continues the text.
			}
		}

		// Answer all search calls of this turn in one batch.
		if len(searching) > 0 {
			hits, err := searcher.Search(ctx, queries, cfg.TopK)
			if err != nil {
				return nil, fmt.Errorf("agent: turn %d: search: %w", turn, err)
			}
			if len(hits) != len(queries) {
				return nil, fmt.Errorf("agent: turn %d: search returned %d results for %d queries", turn, len(hits), len(queries))
			}
			for j, i := range searching {
				t := &trajs[i]
				ids := tok.Encode(InformationText(hits[j], cfg.MaxInformationChars))
				call := SearchCall{Query: queries[j]}
				if len(ids) >= t.remaining(cfg) {
					// No room left to answer after the results: the
					// trajectory ends here, the results unseen.
					t.Searches = append(t.Searches, call)
					t.Finish = FinishLength
					if cfg.OnSearch != nil {
						cfg.OnSearch(i, call, "")
					}
					continue
				}
				for _, h := range search.VisibleHits(hits[j], cfg.MaxInformationChars) {
					call.Documents = append(call.Documents, h.Document)
				}
				t.Searches = append(t.Searches, call)
				t.appendInserted(ids)
				segment[i] = ""
				if cfg.OnSearch != nil {
					// The inserted text as the trajectory's Response decodes it.
					cfg.OnSearch(i, call, tok.Decode(ids))
				}
			}
		}

		next := active[:0]
		for _, i := range active {
			if trajs[i].Finish == "" {
				next = append(next, i)
			}
		}
		active = next
	}

	for i := range trajs {
		t := &trajs[i]
		t.Response = tok.Decode(t.Tokens[t.PromptLen:])
	}
	return trajs, nil
}

// InformationText is what the loop inserts after a search call: the hits
// formatted as Search-R1 does, cut to maxChars characters (0 = no bound),
// between <information> tags. search.VisibleHits(hits, maxChars) are the
// documents this text shows.
func InformationText(hits []search.Hit, maxChars int) string {
	return "\n\n<information>" + search.TruncateInformation(search.FormatHits(hits), maxChars) + "</information>\n\n"
}

// turnBudget is the most tokens the next turn may sample.
func (t *Trajectory) turnBudget(cfg Config) int {
	return TurnBudget(cfg.MaxTokensPerTurn, t.remaining(cfg))
}

// TurnBudget is the most tokens a turn may sample when remaining response
// tokens are left: remaining, bounded by maxPerTurn when that is set (0 =
// no per-turn bound).
func TurnBudget(maxPerTurn, remaining int) int {
	if maxPerTurn > 0 {
		return min(maxPerTurn, remaining)
	}
	return remaining
}

// remaining is the response token budget left.
func (t *Trajectory) remaining(cfg Config) int {
	return cfg.MaxResponseTokens - (len(t.Tokens) - t.PromptLen)
}

func (t *Trajectory) appendGenerated(tokens []int32, logProbs []float32) {
	t.Tokens = append(t.Tokens, tokens...)
	t.LogProbs = append(t.LogProbs, logProbs...)
	for range tokens {
		t.LossMask = append(t.LossMask, 1)
	}
	t.GeneratedTokens += len(tokens)
}

func (t *Trajectory) appendInserted(ids []int32) {
	t.Tokens = append(t.Tokens, ids...)
	t.LogProbs = append(t.LogProbs, make([]float32, len(ids))...)
	t.LossMask = append(t.LossMask, make([]float32, len(ids))...)
}

// firstStop returns the stop string that occurs earliest in text, or "".
func firstStop(text string, stops []string) string {
	best, bestAt := "", len(text)+1
	for _, s := range stops {
		if at := strings.Index(text, s); at >= 0 && at < bestAt {
			best, bestAt = s, at
		}
	}
	return best
}
