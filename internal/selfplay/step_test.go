package selfplay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/agent/agenttest"
	"github.com/ssp-project/ssp/internal/judge"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/search"
)

// The test world: four linked facts and four target answers.
var worldDocs = []search.Document{
	{ID: "varn", Contents: "\"Lake Varn\"\nLake Varn lies north of the town of Osk."},
	{ID: "osk", Contents: "\"Osk\"\nOsk is a harbour town founded by Mira Tal."},
	{ID: "tal", Contents: "\"Mira Tal\"\nMira Tal was a sailor born in Brenn."},
	{ID: "brenn", Contents: "\"Brenn\"\nBrenn is a village on the Grey Coast."},
}

var worldSeeds = []Seed{
	{Answers: []string{"Osk"}},
	{Answers: []string{"Mira Tal", "Tal"}, Hops: 2},
	{Answers: []string{"Brenn"}},
	{Answers: []string{"Grey Coast"}},
}

const (
	oskQuestion  = "Which harbour town lies south of Lake Varn?"
	greyQuestion = "On which coast is the village where the sailor was born?"
	poolQuestion = "Which village did the founder of the harbour town come from?"
)

// replyCycler returns a reply picker for scripted policies: each call with
// the same prompt gets the next of its replies, round and round.
func replyCycler() func(prompt string, replies ...string) string {
	var mu sync.Mutex
	calls := map[string]int{}
	return func(prompt string, replies ...string) string {
		mu.Lock()
		defer mu.Unlock()
		n := calls[prompt]
		calls[prompt]++
		return replies[n%len(replies)]
	}
}

// worldPolicy plays every role from a script. Identical prompts get
// successive replies from a list, so the G solver rollouts of one question
// differ the way sampled ones would.
func worldPolicy() *agenttest.ScriptedPolicy {
	next := replyCycler()
	return &agenttest.ScriptedPolicy{LogProb: -0.5, Reply: func(prompt string) string {
		turn := strings.Count(prompt, "</information>\n\n") // inserted blocks, not the protocol text
		switch {
		case strings.Contains(prompt, "You write quiz questions"):
			script := map[string][]string{
				"Osk": {"<think>start at the lake</think><search>lake varn</search>", "<search>harbour town</search>",
					"<question>" + oskQuestion + "</question>"},
				"Mira Tal": {"<search>osk founder</search>", "<search>sailor</search>",
					"<question>Was Osk founded by Mira Tal, the sailor?</question>"}, // leaks the answer
				"Brenn":      {"I do not know how to do this."}, // no question
				"Grey Coast": {"<search>brenn village</search>", "<search>sailor born</search>", "<question>" + greyQuestion + "</question>"},
			}
			for answer, turns := range script {
				if strings.Contains(prompt, "Answer: "+answer+"\n") {
					return turns[min(turn, len(turns)-1)]
				}
			}
			return "unknown seed"
		case strings.Contains(prompt, "Do not search."):
			if strings.Contains(prompt, oskQuestion) {
				return "<think>the documents say Osk</think><answer>Osk</answer>"
			}
			return "<answer>Red Coast</answer>"
		case strings.Contains(prompt, "Question: "+oskQuestion):
			if turn == 1 {
				return "<answer>Osk</answer>"
			}
			return next(prompt, "<answer>Osk</answer>", "<answer>Brenn</answer>",
				"<answer>Brenn <answer>Osk</answer>", "<search>harbour town</search>")
		case strings.Contains(prompt, "Question: "+greyQuestion):
			return "<answer>Grey Coast</answer>"
		case strings.Contains(prompt, "Question: "+poolQuestion):
			return "<answer>Brenn</answer>"
		}
		return "no script"
	}}
}

// recordingLearner keeps every batch it is given.
type recordingLearner struct {
	batches []model.PolicyBatch
	losses  []model.PolicyLossConfig
	err     error
}

func (l *recordingLearner) PolicyStep(ctx context.Context, b model.PolicyBatch, loss model.PolicyLossConfig) (model.StepStats, error) {
	if l.err != nil {
		return model.StepStats{}, l.err
	}
	l.batches = append(l.batches, b)
	l.losses = append(l.losses, loss)
	tokens := 0
	for _, m := range b.LossMask {
		for _, x := range m {
			tokens += int(x)
		}
	}
	return model.StepStats{Loss: 0.5, PolicyLoss: 0.5, KL: 0.01, Entropy: 1.5, LR: 1e-6, Tokens: tokens}, nil
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Game.BatchSize = 4
	cfg.Game.SolverRollouts = 4
	cfg.Agent = AgentConfig{MaxTurns: 4, MaxTokensPerTurn: 300, MaxResponseTokens: 4000, MaxPromptTokens: 8000,
		TopK: 2, MaxInformationChars: 2000}
	cfg.Run.SaveEvery = 1
	// The scripted solver's spam writes two answer tags; a threshold of one
	// makes it pay the penalty (TestSolverAnswerTagThreshold covers SSP's 10).
	cfg.Solver.MaxAnswerTags = 1
	cfg.Optim.MiniBatches = 1 // one optimizer step per role, so each test sees whole updates
	return cfg
}

func testGame(cfg Config) (*Game, *agenttest.ScriptedPolicy, *recordingLearner, *agenttest.MemorySearcher) {
	policy := worldPolicy()
	learner := &recordingLearner{}
	searcher := &agenttest.MemorySearcher{Docs: worldDocs}
	g := &Game{
		Config: cfg, Policy: policy, Reference: &agenttest.ScriptedPolicy{LogProb: -1}, Learner: learner,
		Tokenizer: agenttest.CharTokenizer{}, EOSTokenIDs: []int32{agenttest.EOS}, Searcher: searcher,
		Seeds: worldSeeds,
		// ExtractAnswer and ExactMatch default to package score.
		Pool: &ProblemPool{Problems: []Problem{{Question: poolQuestion, Answers: []string{"Brenn"}, SuccessRate: 0.5}}},
	}
	return g, policy, learner, searcher
}

func proposalFor(t *testing.T, ps []proposal, answer string) *proposal {
	t.Helper()
	for i := range ps {
		if ps[i].Seed.Answers[0] == answer {
			return &ps[i]
		}
	}
	t.Fatalf("no proposal for %q", answer)
	return nil
}

func verdict(p *proposal, filter string) (Verdict, bool) {
	for _, v := range p.Verdicts {
		if v.Filter == filter {
			return v, true
		}
	}
	return Verdict{}, false
}

func TestStepEndToEnd(t *testing.T) {
	g, policy, learner, _ := testGame(testConfig())
	res, err := g.Step(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	// Metrics: 1 of 4 questions valid; RAG checked 2 (Osk, Grey Coast),
	// passed 1; the Osk solvers are right 3 times of 4 (the third spams two
	// answer tags: reward 1/4), the pool question (reused for the 3 failed
	// slots) 12 of 12: of the 4 solver groups only Osk's rewards differ.
	wantMetrics := map[string]float64{
		"valid_question_rate": 0.25, "rag_pass_rate": 0.5, "solver_accuracy": 15.0 / 16,
		"solver_reward": (1 + 0 + 0.25 + 1 + 12) / 16.0, "proposer_reward": (0.25 - 3) / 4,
		"questions_valid": 1, "questions_reused": 3, "solver_rollouts": 16,
		"solver_groups": 4, "solver_groups_informative": 1,
		"rejected/answer_leak": 1, "rejected/extract": 1, "rejected/rag": 1, "policy_loss": 0.5, "kl": 0.01, "entropy": 1.5,
	}
	for name, want := range wantMetrics {
		if got, ok := res.Metrics.Get(name); !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("metric %s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{"step", "tokens_generated", "step_seconds", "time/propose", "time/verify", "time/solve", "time/update"} {
		if _, ok := res.Metrics.Get(name); !ok {
			t.Errorf("metric %s missing", name)
		}
	}

	// Two updates, proposer then solver, with the SSP loss knobs.
	if len(learner.batches) != 2 || len(learner.batches[0].Sequences) != 4 || len(learner.batches[1].Sequences) != 16 {
		t.Fatalf("updates: %d batches", len(learner.batches))
	}
	if l := learner.losses[0]; l.ClipLow != 0.2 || l.ClipHigh != 0.28 || l.KLCoef != 0.01 || l.DualClip != 3 || l.KLClamp != 10 {
		t.Fatalf("loss config %+v", l)
	}
	tok := agenttest.CharTokenizer{}
	// Proposer advantages: rewards 1-0.75 (Osk) and -1 ×3, batch-whitened
	// (mean -0.6875, unbiased std 0.625) → 1.5 and -0.5, on every generated token and nowhere else.
	for i, seq := range learner.batches[0].Sequences {
		b := learner.batches[0]
		text := tok.Decode(seq)
		want := float32(-0.5)
		if strings.Contains(text, "<question>"+oskQuestion) {
			want = 1.5
		}
		checkTokenLayout(t, b, i, want)
	}
	// Solver advantages for the Osk question: rewards 1, 0, 0.25, 1 → GRPO
	// (r-0.5625)/0.51539; the pool question's rewards are all 1 → 0.
	wantSolver := map[string]float32{
		"<answer>Osk</answer>":               0.84887,
		"<answer>Brenn</answer>":             -1.09141,
		"<answer>Brenn <answer>Osk</answer>": -0.60634,
		"<search>harbour town</search>":      0.84887,
	}
	for i, seq := range learner.batches[1].Sequences {
		text := tok.Decode(seq)
		want := float32(0)
		if strings.Contains(text, oskQuestion) {
			want = float32(math.NaN())
			for reply, a := range wantSolver {
				if strings.Contains(text, "\n"+reply) {
					want = a
				}
			}
		}
		checkTokenLayout(t, learner.batches[1], i, want)
	}

	// Each role samples at its own temperature.
	for _, req := range policy.Requests {
		stops := strings.Join(req.StopStrings, " ")
		var want float32
		switch {
		case strings.Contains(stops, "</question>"):
			want = 0.8
		case strings.Contains(stops, "</search>"):
			want = 1.0
		default:
			want = 0 // RAG verification, greedy
		}
		if req.Temperature != want {
			t.Errorf("request with stops %q sampled at %v, want %v", stops, req.Temperature, want)
		}
	}

	// The rollout log records every verdict by name.
	var sawLeak bool
	for _, r := range res.Rollouts {
		for _, v := range r.Verdicts {
			if v.Filter == FilterAnswerLeak && !v.Pass {
				sawLeak = true
			}
		}
	}
	if !sawLeak || len(res.Rollouts) != 4+2+16 {
		t.Fatalf("rollouts: %d records, leak verdict logged %v", len(res.Rollouts), sawLeak)
	}
	// The new valid question joined the pool with its success rate.
	if len(g.Pool.Problems) != 2 || g.Pool.Problems[1].Question != oskQuestion || g.Pool.Problems[1].SuccessRate != 0.75 {
		t.Fatalf("pool = %+v", g.Pool.Problems)
	}
}

// checkTokenLayout checks one trajectory of a batch: aligned lengths, the
// advantage on generated tokens only, old log-probs from sampling and
// reference log-probs from the frozen policy.
func checkTokenLayout(t *testing.T, b model.PolicyBatch, i int, wantAdv float32) {
	t.Helper()
	n := len(b.Sequences[i])
	if len(b.LossMask[i]) != n || len(b.Advantages[i]) != n || len(b.OldLogProbs[i]) != n || len(b.RefLogProbs[i]) != n {
		t.Fatalf("trajectory %d: misaligned lengths", i)
	}
	generated := 0
	for k := range n {
		m := b.LossMask[i][k]
		switch {
		case m == 1:
			generated++
			if !(math.Abs(float64(b.Advantages[i][k]-wantAdv)) <= 1e-4) || b.OldLogProbs[i][k] != -0.5 {
				t.Fatalf("trajectory %d token %d: advantage %v (want %v), old log-prob %v", i, k, b.Advantages[i][k], wantAdv, b.OldLogProbs[i][k])
			}
		case m == 0:
			if b.Advantages[i][k] != 0 || b.OldLogProbs[i][k] != 0 {
				t.Fatalf("trajectory %d token %d: unmasked token has advantage %v, log-prob %v", i, k, b.Advantages[i][k], b.OldLogProbs[i][k])
			}
		default:
			t.Fatalf("mask value %v", m)
		}
		if k > 0 && b.RefLogProbs[i][k] != -1 {
			t.Fatalf("reference log-prob %v", b.RefLogProbs[i][k])
		}
	}
	if generated == 0 {
		t.Fatalf("trajectory %d has no generated tokens", i)
	}
}

func TestStepVerdicts(t *testing.T) {
	g, _, _, _ := testGame(testConfig())
	proposals, err := g.propose(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	g.filter(proposals)
	if v, _ := verdict(proposalFor(t, proposals, "Mira Tal"), FilterAnswerLeak); v.Pass {
		t.Errorf("leaking question passed")
	}
	if v, _ := verdict(proposalFor(t, proposals, "Brenn"), FilterExtract); v.Pass {
		t.Errorf("missing question passed extraction")
	}
	osk := proposalFor(t, proposals, "Osk")
	if !osk.Valid() || len(osk.Traj.Queries()) != 2 {
		t.Fatalf("Osk proposal: valid %v, verdicts %+v", osk.Valid(), osk.Verdicts)
	}
	for _, f := range []string{FilterAnswerEvidence, FilterGroundedSearches} {
		if _, ok := verdict(osk, f); ok {
			t.Errorf("%s checked with its filter option off", f)
		}
	}

	// filter.require_answer_evidence and filter.grounded_searches add
	// their verdict to every proposal with a question. (Mutation: not
	// calling either check fails this.)
	for _, c := range []struct {
		filter string
		on     func(*FilterConfig)
		want   func(p *proposal) Verdict
	}{
		{FilterAnswerEvidence, func(f *FilterConfig) { f.RequireAnswerEvidence = true },
			func(p *proposal) Verdict { return CheckAnswerEvidence(&p.Traj, p.Seed.Answers) }},
		{FilterGroundedSearches, func(f *FilterConfig) { f.GroundedSearches = true },
			func(p *proposal) Verdict { return CheckGroundedSearches(p.Traj.Searches, p.Seed.Answers) }},
	} {
		cfg := testConfig()
		c.on(&cfg.Filter)
		g, _, _, _ = testGame(cfg)
		proposals, err = g.propose(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		g.filter(proposals)
		for i := range proposals {
			p := &proposals[i]
			v, ok := verdict(p, c.filter)
			if want := c.want(p); p.Question != "" && (!ok || v != want) {
				t.Errorf("%s: %s verdict %+v (present %v), want %+v", p.Seed.Answers[0], c.filter, v, ok, want)
			}
		}
	}
}

// fmtPtr prints what a record's optional field points to.
func fmtPtr[T any](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

const brennQuestion = "In which village was the founder of the harbour town born?"

// gradedPolicy scripts a step in which three of four questions are valid
// and their solvers succeed in known fractions: Osk 2 of 5 (one of them
// after a search), Grey Coast 5 of 5 (one of them writing two answer
// tags), Brenn 0 of 5; the Mira Tal question leaks its answer.
func gradedPolicy() *agenttest.ScriptedPolicy {
	next := replyCycler()
	return &agenttest.ScriptedPolicy{LogProb: -0.5, Reply: func(prompt string) string {
		turn := strings.Count(prompt, "</information>\n\n")
		switch {
		case strings.Contains(prompt, "You write quiz questions"):
			script := map[string][]string{
				"Osk": {"<search>lake varn</search>", "<search>harbour town</search>", "<question>" + oskQuestion + "</question>"},
				"Mira Tal": {"<search>osk founder</search>", "<search>sailor</search>",
					"<question>Was Osk founded by Mira Tal, the sailor?</question>"},
				"Brenn":      {"<search>osk founder</search>", "<search>sailor born</search>", "<question>" + brennQuestion + "</question>"},
				"Grey Coast": {"<search>brenn village</search>", "<search>sailor born</search>", "<question>" + greyQuestion + "</question>"},
			}
			for answer, turns := range script {
				if strings.Contains(prompt, "Answer: "+answer+"\n") {
					return turns[min(turn, len(turns)-1)]
				}
			}
			return "unknown seed"
		case strings.Contains(prompt, "Do not search."): // the RAG check answers every question right
			for q, a := range map[string]string{oskQuestion: "Osk", greyQuestion: "Grey Coast", brennQuestion: "Brenn"} {
				if strings.Contains(prompt, q) {
					return "<answer>" + a + "</answer>"
				}
			}
			return "<answer>nothing</answer>"
		case strings.Contains(prompt, "Question: "+oskQuestion):
			if turn == 1 {
				return "<answer>Osk</answer>"
			}
			return next(prompt, "<answer>Osk</answer>", "<answer>Brenn</answer>", "<search>harbour town</search>",
				"<answer>Lake Varn</answer>", "I am not sure.")
		case strings.Contains(prompt, "Question: "+greyQuestion):
			return next(prompt, "<answer>Grey Coast</answer>", "<answer>Grey Coast</answer>",
				"<answer>Red Coast <answer>Grey Coast</answer>", "<answer>Grey Coast</answer>", "<answer>Grey Coast</answer>")
		case strings.Contains(prompt, "Question: "+brennQuestion):
			return next(prompt, "<answer>Osk</answer>", "<answer>Grey Coast</answer>", "<answer>Tal</answer>",
				"<answer>Lake Varn</answer>", "<answer>Osk</answer>")
		}
		return "no script"
	}}
}

// TestStepRewardsAndAdvantages plays one step whose questions pass every
// filter and the RAG check and whose solvers succeed in known fractions,
// and checks each reward, success rate and advantage against numbers
// worked out by hand (eps = 1e-6 included), in the rollout records and on
// the tokens the learner gets. Each of these changes makes it fail:
//
//	meanStd divides by n, not n-1 (population std)  Osk proposer 0.5973502, Osk solvers 1.2247424
//	ProposerReward pays s instead of 1-s            Osk 0.4, Grey Coast 1, Brenn 0
//	SolverReward ignores multi_answer_divisor       the two-tag answer gets 1, Grey Coast advantages 0
//	no eps in (r-mean)/(std+eps)                    Osk proposer 0.5173211; Brenn's solvers NaN
//	no format penalty for an invalid question       Mira Tal reward 0
//	proposer advantages per group (GRPO of one)     every proposer advantage 0
//	answer spamming lowers the success rate         Grey Coast s = 0.8
func TestStepRewardsAndAdvantages(t *testing.T) {
	cfg := testConfig()
	cfg.Game.SolverRollouts = 5
	cfg.Solver.MaxAnswerTags, cfg.Solver.MultiAnswerDivisor = 1, 4
	cfg.Proposer.FormatPenalty = -1
	g, _, learner, _ := testGame(cfg)
	g.Policy = gradedPolicy()
	g.Pool = &ProblemPool{} // nothing to refill the invalid slot with
	res, err := g.Step(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}

	// Solver rewards and GRPO advantages (r - mean)/(std + 1e-6), with the
	// unbiased std over each question's 5 rollouts:
	//   Osk, rewards 1 1 0 0 0: mean 0.4, std √(1.2/4) = 0.5477226;
	//     0.6/0.5477236 = 1.0954431, -0.4/0.5477236 = -0.7302954.
	//   Grey Coast, rewards 1 1 1 1 and 1/4 for the two-tag answer (more
	//     than solver.max_answer_tags 1, divided by multi_answer_divisor 4):
	//     mean 0.85, std √(0.45/4) = 0.3354102;
	//     0.15/0.3354112 = 0.4472123, -0.6/0.3354112 = -1.7888490.
	//   Brenn, rewards 0 ×5: std 0, so 0/(0 + 1e-6) = 0.
	type want struct {
		question, response string // the response's start
		n                  int    // rollouts expected
		correct            bool
		reward, advantage  float64
	}
	solver := []want{
		{oskQuestion, "<answer>Osk</answer>", 1, true, 1, 1.0954431150},
		{oskQuestion, "<search>harbour town</search>", 1, true, 1, 1.0954431150},
		{oskQuestion, "<answer>Brenn</answer>", 1, false, 0, -0.7302954100},
		{oskQuestion, "<answer>Lake Varn</answer>", 1, false, 0, -0.7302954100},
		{oskQuestion, "I am not sure.", 1, false, 0, -0.7302954100},
		{greyQuestion, "<answer>Grey Coast</answer>", 4, true, 1, 0.4472122622},
		{greyQuestion, "<answer>Red Coast <answer>Grey Coast</answer>", 1, true, 0.25, -1.7888490487},
		{brennQuestion, "<answer>Osk</answer>", 2, false, 0, 0},
		{brennQuestion, "<answer>Grey Coast</answer>", 1, false, 0, 0},
		{brennQuestion, "<answer>Tal</answer>", 1, false, 0, 0},
		{brennQuestion, "<answer>Lake Varn</answer>", 1, false, 0, 0},
	}
	// Proposer rewards 1-s on valid questions (Osk 1-0.4 = 0.6, Grey Coast
	// 1-1 = 0, Brenn 1-0 = 1) and the format penalty -1 for the leak, then
	// REINFORCE++: whitened over the batch, mean 0.15, unbiased std
	// √(2.27/3) = 0.8698659; 0.45, -0.15, 0.85, -1.15 over 0.8698669.
	proposer := map[string]struct {
		valid             bool
		successRate       float64
		reward, advantage float64
	}{
		"Osk":        {true, 0.4, 0.6, 0.5173205293},
		"Grey Coast": {true, 1, 0, -0.1724401764},
		"Brenn":      {true, 0, 1, 0.9771609998},
		"Mira Tal":   {false, 0, -1, -1.3220413527},
	}

	const tol = 1e-9
	off := func(got, want float64) bool { return !(math.Abs(got-want) <= tol) } // NaN is off
	seen := make([]int, len(solver))
	// wantAdvantage maps a trained sequence's text to its advantage.
	type matcher struct {
		response string
		match    func(text string) (float64, bool)
	}
	var wantAdvantage []matcher
	for _, r := range res.Rollouts {
		switch r.Role {
		case "proposer":
			w, ok := proposer[r.Answers[0]]
			if !ok || r.Valid == nil || *r.Valid != w.valid {
				t.Errorf("proposer for %q: valid %s, verdicts %+v", r.Answers[0], fmtPtr(r.Valid), r.Verdicts)
				continue
			}
			if w.valid && (r.SuccessRate == nil || off(*r.SuccessRate, w.successRate)) {
				t.Errorf("proposer for %q: success rate %s, want %v", r.Answers[0], fmtPtr(r.SuccessRate), w.successRate)
			}
			if off(r.Reward, w.reward) || off(r.Advantage, w.advantage) {
				t.Errorf("proposer for %q: reward %.10f advantage %.10f, want %.10f and %.10f",
					r.Answers[0], r.Reward, r.Advantage, w.reward, w.advantage)
			}
			response := r.Response
			wantAdvantage = append(wantAdvantage, matcher{response, func(text string) (float64, bool) {
				return w.advantage, strings.Contains(text, "You write quiz questions") && strings.HasSuffix(text, response)
			}})
		case "solver":
			k := slices.IndexFunc(solver, func(w want) bool {
				return w.question == r.Question && strings.HasPrefix(r.Response, w.response)
			})
			if k < 0 {
				t.Errorf("unexpected solver rollout for %q: %q", r.Question, r.Response)
				continue
			}
			w := solver[k]
			seen[k]++
			if r.Correct == nil || *r.Correct != w.correct || off(r.Reward, w.reward) || off(r.Advantage, w.advantage) {
				t.Errorf("solver %q on %q: correct %s reward %.10f advantage %.10f, want %v, %.10f and %.10f",
					r.Response, r.Question, fmtPtr(r.Correct), r.Reward, r.Advantage, w.correct, w.reward, w.advantage)
			}
			question, response := r.Question, r.Response
			wantAdvantage = append(wantAdvantage, matcher{response, func(text string) (float64, bool) {
				return w.advantage, strings.Contains(text, "Question: "+question) && strings.HasSuffix(text, response)
			}})
		}
	}
	for k, w := range solver {
		if seen[k] != w.n {
			t.Errorf("%d solver rollouts on %q start with %q, want %d", seen[k], w.question, w.response, w.n)
		}
	}

	// The learner gets the same advantages on every generated token: the
	// proposer's 4 trajectories, then the solver's 15.
	if len(learner.batches) != 2 || len(learner.batches[0].Sequences) != 4 || len(learner.batches[1].Sequences) != 15 {
		t.Fatalf("updates: %d batches", len(learner.batches))
	}
	tok := agenttest.CharTokenizer{}
	for _, b := range learner.batches {
		for i, seq := range b.Sequences {
			text := tok.Decode(seq)
			// The rollout whose response is the longest suffix of the
			// sequence ("<answer>Grey Coast</answer>" ends the two-tag one too).
			best, adv := -1, 0.0
			for _, m := range wantAdvantage {
				if a, ok := m.match(text); ok && len(m.response) > best {
					best, adv = len(m.response), a
				}
			}
			if best < 0 {
				t.Errorf("trained sequence matches no rollout:\n%s", text)
				continue
			}
			checkTokenLayout(t, b, i, float32(adv))
		}
	}

	// Step metrics: 3 of 4 questions valid, all 3 pass RAG; 7 of 15 solver
	// rollouts correct; mean solver reward (2 + 4.25 + 0)/15; mean
	// proposer reward (0.6 + 0 + 1 - 1)/4. Of the 3 solver groups two have
	// rewards that differ: Osk's, and Grey Coast's, all right but one
	// earning 1/4 for its two answer tags; Brenn's are all 0.
	for name, want := range map[string]float64{
		"valid_question_rate": 0.75, "rag_pass_rate": 1, "solver_accuracy": 7.0 / 15,
		"solver_reward": 6.25 / 15, "proposer_reward": 0.15,
		"questions_valid": 3, "questions_reused": 0, "solver_rollouts": 15, "rejected/answer_leak": 1,
		"solver_groups": 3, "solver_groups_informative": 2,
	} {
		if got, ok := res.Metrics.Get(name); !ok || off(got, want) {
			t.Errorf("metric %s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// The pool keeps each valid question with its success rate.
	rates := map[string]float64{}
	for _, p := range g.Pool.Problems {
		rates[p.Question] = p.SuccessRate
	}
	if len(rates) != 3 || rates[oskQuestion] != 0.4 || rates[greyQuestion] != 1 || rates[brennQuestion] != 0 {
		t.Errorf("pool success rates %v", rates)
	}
}

func TestRAGJudge(t *testing.T) {
	// EM fails for the Grey Coast question ("Red Coast"); the judge decides.
	for _, tc := range []struct {
		name     string
		judge    Matcher
		wantPass bool
		detail   string
	}{
		{"no judge", nil, false, "not the target"},
		{"judge accepts", func(context.Context, string, string, []string) (bool, error) { return true, nil }, true, ""},
		{"judge fails closed", func(context.Context, string, string, []string) (bool, error) {
			return true, errors.New("judge unreachable")
		}, false, "judge error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _, _, _ := testGame(testConfig())
			g.Judge = tc.judge
			ps, err := g.propose(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			g.filter(ps)
			if _, err := g.verifyRAG(context.Background(), 1, newTestRand(), ps); err != nil {
				t.Fatal(err)
			}
			v, ok := verdict(proposalFor(t, ps, "Grey Coast"), FilterRAG)
			if !ok || v.Pass != tc.wantPass || !strings.Contains(v.Detail, tc.detail) {
				t.Fatalf("rag verdict %+v (present %v), want pass=%v detail %q", v, ok, tc.wantPass, tc.detail)
			}
		})
	}
}

func TestRAGPromptHasOwnDocsAndNoise(t *testing.T) {
	cfg := testConfig()
	cfg.Verify.NoiseBlocks = 1
	g, policy, _, _ := testGame(cfg)
	if _, err := g.Step(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	for _, req := range policy.Requests {
		if strings.Contains(strings.Join(req.StopStrings, " "), "</search>") || strings.Contains(strings.Join(req.StopStrings, " "), "</question>") {
			continue
		}
		for _, p := range req.Prompts {
			text := agenttest.CharTokenizer{}.Decode(p)
			if !strings.Contains(text, oskQuestion) {
				continue
			}
			// The Osk proposer found the Lake Varn and Osk documents; one
			// extra block (from another proposer) adds at least one more.
			docs := strings.Count(text, "Doc ")
			if !strings.Contains(text, "Lake Varn lies north") || !strings.Contains(text, "harbour town founded") || docs < 3 {
				t.Fatalf("RAG prompt lacks own documents or noise (%d docs):\n%s", docs, text)
			}
			return
		}
	}
	t.Fatal("no RAG prompt for the Osk question")
}

func TestStepCombinedUpdateAndIntermediateReward(t *testing.T) {
	cfg := testConfig()
	cfg.Game.CombinedUpdate = true
	cfg.Proposer.Reward = "intermediate"
	cfg.Optim.KLCoef = 0
	g, _, learner, _ := testGame(cfg)
	g.Reference = nil
	res, err := g.Step(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(learner.batches) != 1 || len(learner.batches[0].Sequences) != 20 || learner.batches[0].RefLogProbs != nil {
		t.Fatalf("combined update: %d batches", len(learner.batches))
	}
	// Osk: s = 0.75 → 4·0.75·0.25 = 0.75; three penalties of -1.
	if got, _ := res.Metrics.Get("proposer_reward"); math.Abs(got-(0.75-3)/4) > 1e-9 {
		t.Fatalf("proposer_reward = %v", got)
	}
}

func TestStepMiniBatches(t *testing.T) {
	for _, tc := range []struct {
		miniBatches int
		combined    bool
		want        []int // trajectories per optimizer step
	}{
		// 4 proposer trajectories, then 16 solver trajectories.
		{2, false, []int{2, 2, 8, 8}},
		{3, false, []int{1, 1, 2, 5, 5, 6}},
		{5, false, []int{1, 1, 1, 1, 3, 3, 3, 3, 4}},
		{3, true, []int{6, 7, 7}},
	} {
		cfg := testConfig()
		cfg.Optim.MiniBatches = tc.miniBatches
		cfg.Game.CombinedUpdate = tc.combined
		g, _, learner, _ := testGame(cfg)
		if _, err := g.Step(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, b := range learner.batches {
			got = append(got, len(b.Sequences))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("optim.mini_batches %d (combined %v): batches of %v trajectories, want %v",
				tc.miniBatches, tc.combined, got, tc.want)
		}
	}
}

func TestStepErrors(t *testing.T) {
	g, _, learner, searcher := testGame(testConfig())
	searcher.Err = errors.New("index offline")
	if _, err := g.Step(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "index offline") {
		t.Fatalf("search failure: err = %v", err)
	}
	searcher.Err = nil
	learner.err = errors.New("out of memory")
	if _, err := g.Step(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("update failure: err = %v", err)
	}
	g.Reference = nil
	if _, err := g.Step(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "reference") {
		t.Fatalf("missing reference: err = %v", err)
	}
	g2, _, _, _ := testGame(testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g2.Step(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

func TestStepSeedsCoverEpoch(t *testing.T) {
	cfg := testConfig()
	cfg.Game.BatchSize = 3
	g, _, _, _ := testGame(cfg)
	// Steps 1..4 take 12 seeds: three full epochs of 4, each a permutation.
	var all []Seed
	for step := 1; step <= 4; step++ {
		all = append(all, g.stepSeeds(step)...)
	}
	for epoch := 0; epoch < 3; epoch++ {
		seen := map[string]bool{}
		for _, s := range all[epoch*4 : epoch*4+4] {
			seen[s.Answers[0]] = true
		}
		if len(seen) != 4 {
			t.Fatalf("epoch %d is not a permutation: %v", epoch, seen)
		}
	}
	// Deterministic per (seed, step).
	a, b := g.stepSeeds(2), g.stepSeeds(2)
	for i := range a {
		if a[i].Answers[0] != b[i].Answers[0] {
			t.Fatal("stepSeeds is not deterministic")
		}
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// TestStepQAProblems: with game.problems "qa" the step is the supervised
// baseline: no proposer rollouts, the solver plays the given questions and
// is rewarded against their gold answers.
func TestStepQAProblems(t *testing.T) {
	cfg := testConfig()
	cfg.Game.Problems = ProblemsQA
	cfg.Game.BatchSize = 2
	g, _, learner, _ := testGame(cfg)
	g.Seeds = nil
	g.QA = []QAPair{{Question: oskQuestion, Answers: []string{"Osk"}}, {Question: greyQuestion, Answers: []string{"Grey Coast"}}}
	res, err := g.Step(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Rollouts {
		if r.Role != "solver" {
			t.Fatalf("a %s rollout in qa mode", r.Role)
		}
	}
	// Osk: 3 of 4 correct (one spams answers: 1/4 reward); Grey Coast 4 of 4.
	if got, _ := res.Metrics.Get("solver_accuracy"); math.Abs(got-7.0/8) > 1e-9 {
		t.Errorf("solver_accuracy %v, want 7/8", got)
	}
	if got, _ := res.Metrics.Get("questions_reused"); got != 0 {
		t.Errorf("questions_reused = %v in qa mode, want 0", got)
	}
	for _, m := range res.Metrics {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			t.Errorf("metric %s = %v in qa mode", m.Name, m.Value)
		}
	}
	if len(learner.batches) != 1 || len(learner.batches[0].Sequences) != 8 {
		t.Fatalf("want one solver update of 8 trajectories, got %d batches", len(learner.batches))
	}
	g.QA = nil
	if _, err := g.Step(context.Background(), 2); err == nil || !strings.Contains(err.Error(), "qa_data") {
		t.Errorf("qa mode without QA pairs: %v", err)
	}
	bad := testConfig()
	bad.Game.Problems = "labels"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "game.problems") {
		t.Errorf("unknown game.problems: %v", err)
	}
}

// TestSolverAnswerTagThreshold: with SSP's threshold (more than 10 tags) a
// response that writes two <answer> tags keeps its reward, and tags inside
// inserted search results are not the model's.
func TestSolverAnswerTagThreshold(t *testing.T) {
	cfg := testConfig()
	cfg.Solver.MaxAnswerTags = DefaultConfig().Solver.MaxAnswerTags
	g, _, _, searcher := testGame(cfg)
	spam := search.Document{ID: "notes", Contents: "\"Harbour town notes\"\nharbour town" + strings.Repeat(" <answer>Osk</answer>", 12)}
	searcher.Docs = append(append([]search.Document(nil), worldDocs...), spam)
	res, err := g.Step(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var twoTags, searched bool
	for _, r := range res.Rollouts {
		if r.Role != "solver" || r.Question != oskQuestion {
			continue
		}
		switch {
		case strings.Contains(r.Response, "<answer>Brenn <answer>Osk</answer>"):
			twoTags = true
			if r.Reward != 1 {
				t.Errorf("two answer tags: reward %v, want 1", r.Reward)
			}
		case strings.Contains(r.Response, "Harbour town notes"):
			searched = true
			if strings.Count(r.Response, "<answer>") <= 10 || r.Reward != 1 {
				t.Errorf("answer tags in search results: reward %v, want 1 (%d tags in the response)", r.Reward, strings.Count(r.Response, "<answer>"))
			}
		}
	}
	if !twoTags || !searched {
		t.Fatalf("scripted rollouts missing: two tags %v, searched %v", twoTags, searched)
	}
	bad := DefaultConfig()
	bad.Solver.MaxAnswerTags = -1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "solver.max_answer_tags") {
		t.Fatalf("negative solver.max_answer_tags: %v", err)
	}
}

// TestStepPoolReplaysInformativeQuestions: failed slots are refilled with
// questions some rollouts solved, not with ones nobody (or everybody)
// solved, whose GRPO groups would train nothing.
func TestStepPoolReplaysInformativeQuestions(t *testing.T) {
	g, _, _, _ := testGame(testConfig())
	g.Pool = &ProblemPool{Problems: []Problem{
		{Question: "Which lake lies north of the town founded by the sailor?", Answers: []string{"Lake Varn"}, SuccessRate: 0},
		{Question: poolQuestion, Answers: []string{"Brenn"}, SuccessRate: 0.5},
		{Question: "Who founded the harbour town north of which Lake Varn lies?", Answers: []string{"Mira Tal"}, SuccessRate: 0.25},
		{Question: "Which village on the Grey Coast was the sailor born in?", Answers: []string{"Brenn"}, SuccessRate: 0.75},
		{Question: "Which town did Mira Tal found?", Answers: []string{"Osk"}, SuccessRate: 1},
	}}
	res, err := g.Step(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	reused := map[string]bool{}
	for _, r := range res.Rollouts {
		if r.Role == "solver" && r.Source == "pool" {
			reused[r.Question] = true
		}
	}
	// Three slots failed; three informative questions fill them.
	if len(reused) != 3 {
		t.Fatalf("reused %d distinct questions, want 3: %v", len(reused), reused)
	}
	for _, prob := range g.Pool.Problems {
		if reused[prob.Question] && (prob.Question == "Which lake lies north of the town founded by the sailor?" || prob.Question == "Which town did Mira Tal found?") {
			t.Errorf("replayed %q, which every rollout solved or none did", prob.Question)
		}
	}
}

// TestRAGSeesWhatTheProposerSaw: search results inserted into a rollout are
// cut to agent.max_information_chars; the RAG check gets the same cut, not
// the whole documents.
func TestRAGSeesWhatTheProposerSaw(t *testing.T) {
	cfg := testConfig()
	cfg.Verify.NoiseBlocks = 0
	// `Doc 1(Title: "Lake Varn") Lake Varn lies` is 40 characters.
	cfg.Agent.MaxInformationChars = 40
	g, policy, _, _ := testGame(cfg)
	ps, err := g.propose(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	osk := proposalFor(t, ps, "Osk")
	if r := osk.Traj.Response; !strings.Contains(r, "Lake Varn lies</information>") {
		t.Fatalf("the proposer's results are not cut as expected:\n%s", r)
	}
	g.filter(ps)
	policy.Requests = nil
	if _, err := g.verifyRAG(context.Background(), 1, newTestRand(), ps); err != nil {
		t.Fatal(err)
	}
	var rag string
	for _, req := range policy.Requests {
		for _, p := range req.Prompts {
			if text := (agenttest.CharTokenizer{}).Decode(p); strings.Contains(text, oskQuestion) {
				rag = text
			}
		}
	}
	if !strings.Contains(rag, "Lake Varn lies") || strings.Contains(rag, "lies north") {
		t.Fatalf("RAG prompt shows more (or less) than the proposer saw:\n%s", rag)
	}
}

// TestRAGPromptDropsNoiseFirst: when the proposer's documents and the
// distractors do not fit verify.max_prompt_tokens, distractors are left out
// first; the proposer's own documents go only when no distractor is left.
func TestRAGPromptDropsNoiseFirst(t *testing.T) {
	own := []search.Document{
		{ID: "o1", Contents: "\"Own one\"\nThe first own document."},
		{ID: "o2", Contents: "\"Own two\"\nThe second own document."},
		{ID: "o3", Contents: "\"Own three\"\nThe third own document."},
	}
	var noise []search.Document
	for i := range 10 {
		noise = append(noise, search.Document{ID: fmt.Sprintf("n%d", i), Contents: fmt.Sprintf("\"Noise %c\"\nA distractor numbered %c.", 'a'+i, 'a'+i)})
	}
	g, _, _, _ := testGame(testConfig())
	size := func(docs []search.Document) int {
		system, user := RAGMessages(oskQuestion, docs)
		ids, err := g.encodeWithin(system, user, 1<<30, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}
	for _, tc := range []struct {
		name                string
		limit               int
		wantOwn, wantNoise  int // documents kept
		wantDroppedOwnCount int
	}{
		{"everything fits", size(append(own, noise...)), 3, 10, 0},
		{"two distractors fit", size(append(own[:3:3], noise[:2]...)) + 5, 3, 2, 0},
		{"only own documents fit", size(own) + 5, 3, 0, 0},
		{"not even the own documents fit", size(own[:2]) + 5, 2, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.Config.Verify.MaxPromptTokens = tc.limit
			for seed := range uint64(10) {
				prompt, droppedOwn, droppedNoise, err := g.encodeRAGPrompt(rand.New(rand.NewPCG(seed, 7)), oskQuestion, own, noise)
				if err != nil {
					t.Fatal(err)
				}
				ids := prompt.ids
				if len(ids) > tc.limit {
					t.Fatalf("prompt has %d tokens, limit %d", len(ids), tc.limit)
				}
				text := agenttest.CharTokenizer{}.Decode(ids)
				keptOwn, keptNoise := 0, 0
				for _, d := range own {
					if strings.Contains(text, d.Contents[strings.Index(d.Contents, "\n")+1:]) {
						keptOwn++
					}
				}
				for _, d := range noise {
					if strings.Contains(text, d.Contents[strings.Index(d.Contents, "\n")+1:]) {
						keptNoise++
					}
				}
				if keptOwn != tc.wantOwn || keptNoise != tc.wantNoise || droppedOwn != 3-keptOwn || droppedNoise != 10-keptNoise || droppedOwn != tc.wantDroppedOwnCount {
					t.Fatalf("seed %d: kept %d own and %d noise documents (dropped %d, %d), want %d and %d",
						seed, keptOwn, keptNoise, droppedOwn, droppedNoise, tc.wantOwn, tc.wantNoise)
				}
			}
		})
	}
	g.Config.Verify.MaxPromptTokens = 10
	if _, _, _, err := g.encodeRAGPrompt(newTestRand(), oskQuestion, own, noise); err == nil || !strings.Contains(err.Error(), "verify.max_prompt_tokens") {
		t.Fatalf("a budget below the bare prompt: err = %v", err)
	}
}

// TestStepCountsDroppedRAGDocuments: a step whose RAG prompts overflow
// keeps the proposer's documents, passes the question and reports what was
// left out.
func TestStepCountsDroppedRAGDocuments(t *testing.T) {
	cfg := testConfig()
	cfg.Verify.NoiseBlocks = 4
	g, _, _, _ := testGame(cfg)
	// Room for the Osk proposer's two documents and nothing more.
	system, user := RAGMessages(oskQuestion, []search.Document{worldDocs[0], worldDocs[1]})
	ids, err := g.encodeWithin(system, user, 1<<30, "")
	if err != nil {
		t.Fatal(err)
	}
	g.Config.Verify.MaxPromptTokens = len(ids) + 5
	res, err := g.Step(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := res.Metrics.Get("rag/noise_docs_dropped"); got < 1 {
		t.Errorf("rag/noise_docs_dropped = %v, want at least 1", got)
	}
	if got, ok := res.Metrics.Get("rag/own_docs_dropped"); !ok || got != 0 {
		t.Errorf("rag/own_docs_dropped = %v (present %v), want 0", got, ok)
	}
	if got, _ := res.Metrics.Get("questions_valid"); got != 1 {
		t.Errorf("questions_valid = %v, want 1 (the Osk question)", got)
	}
}

// TestRAGAnswererJudge: with verify.rag_answerer "judge" an external chat
// model answers the RAG check (here a stub OpenAI-compatible server), the
// policy is not asked, and the stub's "Answer:" form is read; a failing
// request fails its question closed.
func TestRAGAnswererJudge(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct{ Role, Content string }
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) != 2 {
			http.Error(w, "bad request", 400)
			return
		}
		user := req.Messages[1].Content
		mu.Lock()
		asked = append(asked, user)
		mu.Unlock()
		var reply string
		switch {
		case strings.Contains(user, oskQuestion) && strings.Contains(user, "Lake Varn lies north"):
			reply = "<answer> Osk </answer>"
		case strings.Contains(user, greyQuestion) && strings.Contains(user, "Grey Coast"):
			reply = "The sailor was born in Brenn, a village on the coast.\nAnswer: Grey Coast"
		default:
			http.Error(w, "unexpected prompt", 400)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": reply}}}})
	}))
	defer srv.Close()

	cfg := testConfig()
	cfg.Verify.RAGAnswerer = RAGAnswererJudge
	cfg.Verify.JudgeURL, cfg.Verify.JudgeModel = srv.URL, "rag-model"
	j, err := judge.New(judge.Config{BaseURL: srv.URL, Model: "rag-model", Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g, policy, _, _ := testGame(cfg)
	g.RAGAnswerer = func(ctx context.Context, system, user string) (string, error) {
		return j.Chat(ctx, system, user, 64, 0)
	}
	ps, err := g.propose(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	g.filter(ps)
	policy.Requests = nil
	if n, err := g.verifyRAG(context.Background(), 1, newTestRand(), ps); err != nil || n != 2 {
		t.Fatalf("verifyRAG = %d, %v", n, err)
	}
	if len(policy.Requests) != 0 || len(asked) != 2 {
		t.Fatalf("policy asked %d times, endpoint %d times; want 0 and 2", len(policy.Requests), len(asked))
	}
	for _, answer := range []string{"Osk", "Grey Coast"} {
		if v, ok := verdict(proposalFor(t, ps, answer), FilterRAG); !ok || !v.Pass {
			t.Errorf("%s: RAG verdict %+v", answer, v)
		}
	}

	// The endpoint refuses the Grey Coast prompt: that question fails closed.
	g.RAGAnswerer = func(ctx context.Context, system, user string) (string, error) {
		return j.Chat(ctx, system, strings.ReplaceAll(user, "Grey Coast", "Gray Coast"), 64, 0)
	}
	ps, _ = g.propose(context.Background(), 1)
	g.filter(ps)
	if _, err := g.verifyRAG(context.Background(), 1, newTestRand(), ps); err != nil {
		t.Fatal(err)
	}
	if v, _ := verdict(proposalFor(t, ps, "Grey Coast"), FilterRAG); v.Pass || !strings.Contains(v.Detail, "fails closed") {
		t.Errorf("failed request: verdict %+v", v)
	}

	g.RAGAnswerer = nil
	if _, err := g.Step(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "rag_answerer") {
		t.Errorf("judge answerer without a client: err = %v", err)
	}
	bad := DefaultConfig()
	bad.Verify.RAGAnswerer = RAGAnswererJudge
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "verify.rag_answerer") {
		t.Errorf("judge answerer without verify.judge_url: %v", err)
	}
	bad.Verify.RAGAnswerer = "oracle"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "verify.rag_answerer") {
		t.Errorf("unknown answerer: %v", err)
	}
}

// TestPromptSets: game.prompts picks the wording of all three roles; the
// "ssp" set carries the proposer's backward-chaining instructions with
// example questions (the seed's own when it has one), the Search-R1 solver
// instruction in the user message, and a brief-reasoning RAG prompt.
func TestPromptSets(t *testing.T) {
	cfg := testConfig()
	cfg.Game.Prompts = PromptsSSP
	cfg.Verify.NoiseBlocks = 0
	g, policy, _, _ := testGame(cfg)
	g.Seeds = []Seed{{Answers: []string{"Osk", "Osk town"}, Hops: 2, Example: "Which lake lies north of the harbour town?"}}
	g.Config.Game.BatchSize = 2
	if _, err := g.Step(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	var proposer, solver, rag string
	for _, req := range policy.Requests {
		text := agenttest.CharTokenizer{}.Decode(req.Prompts[0])
		stops := strings.Join(req.StopStrings, " ")
		switch {
		case strings.Contains(stops, "</question>") && proposer == "":
			proposer = text
		case strings.Contains(stops, "</search>") && solver == "":
			solver = text
		}
	}
	for _, want := range []string{"Work backwards from the answer", "Which lake lies north of the harbour town?",
		"Answer: Osk\n", "Other names for it (also forbidden in the question): Osk town", "takes 2 searches", "<question>"} {
		if !strings.Contains(proposer, want) {
			t.Errorf("ssp proposer prompt lacks %q:\n%s", want, proposer)
		}
	}
	if strings.Contains(proposer, "You write quiz questions") {
		t.Errorf("ssp proposer prompt uses the short wording")
	}
	if !strings.HasPrefix(solver, "You are a helpful assistant.") || !strings.Contains(solver, "<search> query </search>") {
		t.Errorf("ssp solver prompt:\n%s", solver)
	}
	// The scripted policy writes no question for these prompts, so the RAG
	// prompt is built directly.
	prompt, _, _, err := g.encodeRAGPrompt(newTestRand(), oskQuestion, worldDocs[:2], nil)
	if err != nil {
		t.Fatal(err)
	}
	rag = agenttest.CharTokenizer{}.Decode(prompt.ids)
	if !strings.Contains(rag, "at most about 50 words") || !strings.Contains(rag, "Materials:") || !strings.Contains(rag, "Lake Varn lies north") {
		t.Errorf("ssp RAG prompt:\n%s", rag)
	}
	// Without an example on the seed, the set's own examples are shown.
	system, _ := sspProposerMessages(Seed{Answers: []string{"Osk"}}, 3)
	if !strings.Contains(system, sspExampleQuestions) {
		t.Errorf("no example questions in the ssp proposer prompt")
	}
	short, err := Prompts(DefaultConfig().Game.Prompts)
	if err != nil || short.Name != PromptsSSPShort {
		t.Fatalf("default prompt set %q, %v", short.Name, err)
	}
	if s, _ := short.Proposer(worldSeeds[0], 2); s != proposerSystem {
		t.Errorf("ssp-short proposer prompt changed")
	}
	bad := DefaultConfig()
	bad.Game.Prompts = "verbose"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "game.prompts") {
		t.Errorf("unknown prompt set: %v", err)
	}
}

// Each trajectory is trained and scored by the reference at the temperature
// its role sampled at, so that old, new and reference log-probs belong to
// the same distribution.
func TestStepScoresAtSamplingTemperature(t *testing.T) {
	cfg := testConfig()
	cfg.Proposer.Temperature, cfg.Solver.Temperature = 0.8, 0.9
	for _, combined := range []bool{false, true} {
		cfg.Game.CombinedUpdate = combined
		g, _, learner, _ := testGame(cfg)
		if _, err := g.Step(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		reference := g.Reference.(*agenttest.ScriptedPolicy)
		if len(reference.ScoredTemperatures) != len(learner.batches) {
			t.Fatalf("combined %v: %d reference calls for %d batches", combined, len(reference.ScoredTemperatures), len(learner.batches))
		}
		for k, b := range learner.batches {
			if len(b.Temperatures) != len(b.Sequences) {
				t.Fatalf("combined %v: batch %d has %d temperatures for %d sequences", combined, k, len(b.Temperatures), len(b.Sequences))
			}
			for i, seq := range b.Sequences {
				want := float32(0.9)
				if strings.Contains(agenttest.CharTokenizer{}.Decode(seq), "You write quiz questions") {
					want = 0.8
				}
				if b.Temperatures[i] != want || reference.ScoredTemperatures[k][i] != want {
					t.Errorf("combined %v: batch %d sequence %d trained at %v, scored by the reference at %v, sampled at %v",
						combined, k, i, b.Temperatures[i], reference.ScoredTemperatures[k][i], want)
				}
			}
		}
	}
}

// zeroLearner is a recordingLearner that can skip a zero-gradient step.
type zeroLearner struct {
	recordingLearner
	zeroSteps int
}

func (l *zeroLearner) ZeroGradientStep(ctx context.Context) (model.StepStats, error) {
	l.zeroSteps++
	return model.StepStats{LR: 1e-6, Skipped: 1}, nil
}

// TestUpdateSkipsZeroAdvantages checks when an update runs the model: not
// for a mini-batch whose advantages are all 0 with the KL term off (the
// optimizer's step is taken without it), always otherwise.
func TestUpdateSkipsZeroAdvantages(t *testing.T) {
	traj := func() agent.Trajectory {
		return agent.Trajectory{Tokens: []int32{1, 2, 3, 4}, PromptLen: 2, LossMask: []float32{0, 0, 1, 1}, LogProbs: []float32{0, 0, -1, -1}}
	}
	solutions := func(advantages ...float64) []solution {
		var out []solution
		for _, a := range advantages {
			out = append(out, solution{Traj: traj(), Advantage: a})
		}
		return out
	}
	cases := []struct {
		name             string
		kl               float32
		advantages       []float64
		full, zero, skip int
	}{
		{"all zero, KL off", 0, []float64{0, 0, 0, 0}, 0, 2, 2},
		{"all zero, KL on", 0.01, []float64{0, 0, 0, 0}, 2, 0, 0},
		{"one non-zero", 0, []float64{0, 0, 0.5, 0}, 2, 0, 0}, // one mini-batch skipped at most
	}
	for _, c := range cases {
		cfg := testConfig()
		cfg.Game.TrainProposer, cfg.Game.TrainSolver = false, true
		cfg.Optim.KLCoef = c.kl
		cfg.Optim.MiniBatches = 2
		g, _, _, _ := testGame(cfg)
		l := &zeroLearner{}
		g.Learner = l
		stats, err := g.update(context.Background(), rand.New(rand.NewPCG(1, 2)), nil, solutions(c.advantages...))
		if err != nil {
			t.Fatal(err)
		}
		full := len(l.batches)
		if c.name == "one non-zero" {
			// The mini-batch holding the non-zero advantage runs; the other may be skipped.
			if full < 1 || full+l.zeroSteps != 2 || stats.Skipped != l.zeroSteps {
				t.Errorf("%s: %d full and %d skipped steps (stats %d)", c.name, full, l.zeroSteps, stats.Skipped)
			}
			continue
		}
		if full != c.full || l.zeroSteps != c.zero || stats.Skipped != c.skip {
			t.Errorf("%s: %d full and %d skipped steps (stats %d), want %d and %d", c.name, full, l.zeroSteps, stats.Skipped, c.full, c.zero)
		}
	}
	// A learner without the skip always runs the model.
	cfg := testConfig()
	cfg.Game.TrainProposer, cfg.Optim.KLCoef = false, 0
	g, _, learner, _ := testGame(cfg)
	if _, err := g.update(context.Background(), rand.New(rand.NewPCG(1, 2)), nil, solutions(0, 0)); err != nil {
		t.Fatal(err)
	}
	if len(learner.batches) != 1 {
		t.Errorf("a learner without ZeroGradientStep took %d full steps, want 1", len(learner.batches))
	}
}

// TestSolverFilterGroups checks solver.filter_groups: the solver's update
// gets every rollout of the questions whose rollouts' rewards differ (the
// middle one of rewards 1, 0.5, 0 too, though its advantage is 0) and none
// of the others, and a step with no such question takes no solver
// optimizer step at all, not even AdamW's momentum-only one, KL term on or
// off. Each of these changes makes it fail: the option ignored (all 9
// rollouts trained); filtering rollouts by a nonzero advantage instead of
// by question (4 trained); an empty solver update still taking a
// zero-gradient step.
func TestSolverFilterGroups(t *testing.T) {
	rollout := func(problem int, reward, advantage float64) solution {
		return solution{Problem: problem, Reward: reward, Advantage: advantage, Traj: agent.Trajectory{
			Tokens: []int32{1, 2, 3, 4}, PromptLen: 2, LossMask: []float32{0, 0, 1, 1}, LogProbs: []float32{0, 0, -1, -1}}}
	}
	mixed := []solution{
		rollout(0, 1, 0.7), rollout(0, 0, -0.7), // differ: trained
		rollout(1, 1, 0), rollout(1, 1, 0), // all right
		rollout(2, 0, 0), rollout(2, 0, 0), // all wrong
		rollout(3, 1, 1), rollout(3, 0.5, 0), rollout(3, 0, -1), // differ: trained, all three
	}
	uniform := mixed[2:6]
	cases := []struct {
		name      string
		filter    bool
		kl        float32
		solutions []solution
		trained   int // sequences in the one solver batch; 0: no batch
	}{
		{"filter off", false, 0.1, mixed, 9},
		{"filter on", true, 0.1, mixed, 5},
		{"filter on, nothing to learn, KL on", true, 0.1, uniform, 0},
		{"filter on, nothing to learn, KL off", true, 0, uniform, 0},
	}
	for _, c := range cases {
		cfg := testConfig()
		cfg.Game.TrainProposer, cfg.Game.TrainSolver = false, true
		cfg.Solver.FilterGroups = c.filter
		cfg.Optim.KLCoef = c.kl
		cfg.Optim.MiniBatches = 1
		g, _, _, _ := testGame(cfg)
		l := &zeroLearner{}
		g.Learner = l
		stats, err := g.update(context.Background(), rand.New(rand.NewPCG(1, 2)), nil, slices.Clone(c.solutions))
		if err != nil {
			t.Fatal(err)
		}
		if l.zeroSteps != 0 || stats.Skipped != 0 {
			t.Errorf("%s: %d zero-gradient steps (stats %d), want none", c.name, l.zeroSteps, stats.Skipped)
		}
		if c.trained == 0 {
			if len(l.batches) != 0 {
				t.Errorf("%s: %d solver batches, want none", c.name, len(l.batches))
			}
			continue
		}
		if len(l.batches) != 1 || len(l.batches[0].Sequences) != c.trained {
			t.Errorf("%s: batches %d, want one of %d sequences", c.name, len(l.batches), c.trained)
		}
	}
}
