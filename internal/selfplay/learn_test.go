package selfplay

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/search"
)

// TestGameStepsLearn checks that the game's update makes a policy better:
// a randomly initialised two-layer Llama (hidden 32, 13-token vocabulary)
// plays 40 Game.Step calls as the solver and must learn to answer with the
// name its question's passage gives ("The passage says: the name is Osk."
// → <answer> Osk </answer>), one of four. Everything between the model and
// the optimizer is the game's own: the prompt set and PlainChat, the
// multi-turn search loop (token ids in and out, its loss mask, its sampling
// log-probs as the PPO old log-probs), exact-match grading, SolverReward,
// GRPO advantages, the PPO-clip update in two mini-batches with the KL
// penalty to a frozen copy, and model.Trainer's PolicyStep.
//
// The reward is the mean solver reward of an evaluation step (Game.Step at
// an unused step number, 16 rollouts per name, sampling at temperature 1,
// no update), taken before and after training. Two controls run the same
// 40 steps from the same weights and seeds: the untrained one never
// updates (its figures differ by sampling noise only) and the sign-flipped
// one trains on negated advantages. With seed 1 the figures are:
//
//	trained    0.22 → 1.00
//	untrained  0.22 → 0.19
//	flipped    0.22 → 0.02
//
// and the test asks the trained policy for a rise of at least 0.4, which
// neither control reaches. (With init and run seeds 2-6 the trained rises
// were 0.47-0.83, the untrained ones within ±0.08 and the flipped ends at
// most 0.03.)
//
// Each token is a whole piece of protocol text (pieceTokenizer):
// "<answer> Osk </answer>" is one token, "<search> passage </search>"
// another, the rendered prompt two (everything before the name, then the
// name and what follows it), and the inserted search results one. A random model can
// then hit the format by chance (about one rollout in five is right at
// the start), which GRPO needs, and the answer depends on the prompt's
// last token, which a tiny model learns in a few dozen steps. The solver
// may search; the note it finds says nothing new, so the policy learns to
// answer at once, and the early searching rollouts carry inserted tokens
// the loss mask must leave out.
//
// The problems come from game.problems "qa" (four labelled questions per
// step, G = 8 rollouts each): a random model writes no question that
// passes the filters and the RAG check, so self-play's proposer would hand
// the solver nothing to learn from; both roles share the update path
// tested here. A harder variant, in which the solver had to search to
// find the passage (one target name per step, unknowable without the
// search), took about 300 steps to learn and failed within 200 for four
// seeds of five: too slow and too seed-dependent for a test.
//
// The test was checked by breaking the code it guards, one change at a
// time (trained arm's figures; each run failed unless said otherwise):
//
//   - advantage sign: GRPOAdvantages returning (mean − r)/(std + eps), or
//     ppoTerms negating the advantage: 0.22 → 0.02 (and the "flipped"
//     control, now trained the right way, 0.22 → 1.00).
//   - loss mask: the search loop marking the prompt 1 and sampled tokens
//     0: 0.22 → 0.02. Inserted results 1 and sampled tokens 0: 0.22 → 0.06,
//     then a flipped-control step whose batch held no search stopped on
//     "LossMask selects no token". Sampled tokens 0: that error at step 1.
//     Not caught here: inserted results marked 1 besides the sampled tokens
//     (0.22 → 0.98; their PPO ratio is the policy's probability over an old
//     log-prob of 0, so they hardly move it); the agent's
//     TestRunSearchThenAnswer catches that one.
//   - log-prob alignment: the head applying the per-token inputs (mask,
//     advantages, old and reference log-probs) to the position of their
//     own token instead of the one predicting it: 0.22 → 0.23; scoring
//     each position on its own token instead of the next: 0.22 → 0.16; the
//     search loop recording each turn's sampling log-probs one token late:
//     0.22 → 0.31.
//
// The three arms take about 20 s on two busy cores.
func TestGameStepsLearn(t *testing.T) {
	if testing.Short() {
		t.Skip("plays 3 × 42 game steps with a tiny model")
	}
	const steps, margin = 40, 0.4
	trained := learnArm(t, "trained", steps)
	untrained := learnArm(t, "untrained", steps)
	flipped := learnArm(t, "flipped", steps)
	if rise := trained.end - trained.start; rise < margin {
		t.Errorf("trained policy's reward rose by %.3f (%.3f → %.3f), want at least %.2f", rise, trained.start, trained.end, margin)
	}
	for _, c := range []learnResult{untrained, flipped} {
		if rise := c.end - c.start; rise >= margin {
			t.Errorf("%s control's reward rose by %.3f (%.3f → %.3f): the margin %.2f does not tell learning apart", c.arm, rise, c.start, c.end, margin)
		}
		if trained.end-c.end < margin {
			t.Errorf("trained policy ends at %.3f, the %s control at %.3f: less than %.2f apart", trained.end, c.arm, c.end, margin)
		}
	}
}

// learnResult is one arm of TestGameStepsLearn.
type learnResult struct {
	arm        string
	start, end float64   // evaluation reward before and after training
	rewards    []float64 // the training steps' solver rewards
}

// curve is the training reward averaged over each five steps.
func (r learnResult) curve() string {
	var parts []string
	for i := 0; i < len(r.rewards); i += 5 {
		part := r.rewards[i:min(i+5, len(r.rewards))]
		sum := 0.0
		for _, x := range part {
			sum += x
		}
		parts = append(parts, fmt.Sprintf("%.2f", sum/float64(len(part))))
	}
	return strings.Join(parts, " ")
}

var learnNames = []string{"Osk", "Brenn", "Varn", "Tal"}

func learnQuestion(name string) string { return "The passage says: the name is " + name + "." }

// learnArm plays steps training steps from a fresh model (init seed 1):
// arm "trained" updates with the real trainer, "untrained" never updates,
// "flipped" updates on negated advantages.
func learnArm(t *testing.T, arm string, steps int) learnResult {
	t.Helper()
	cfg := DefaultConfig()
	prompts, err := Prompts(cfg.Game.Prompts)
	if err != nil {
		t.Fatal(err)
	}
	tok := learnTokenizer(prompts)
	policy, reference := learnModel(t, len(tok.pieces)), learnModel(t, len(tok.pieces))
	cfg.Game.Problems = ProblemsQA
	cfg.Game.BatchSize, cfg.Game.SolverRollouts = len(learnNames), 8
	cfg.Agent = AgentConfig{MaxTurns: 3, MaxResponseTokens: 12, MaxPromptTokens: 16, TopK: 1}
	// A tiny random model needs a far larger step than SSP's 1e-6.
	cfg.Optim.LR, cfg.Optim.WarmupSteps = 5e-3, 0
	cfg.Optim.MicroBatchSize = 32
	trainer, err := model.NewTrainer(policy, cfg.OptimizerConfig())
	if err != nil {
		t.Fatal(err)
	}
	var learner Learner = trainer
	switch arm {
	case "untrained":
		learner = frozenLearner{}
	case "flipped":
		learner = flippedLearner{trainer}
	}
	g := &Game{Config: cfg, Policy: policy, Reference: reference, Learner: learner, Tokenizer: tok,
		EOSTokenIDs: []int32{0}, Searcher: noteSearcher{}}
	for _, n := range learnNames {
		g.QA = append(g.QA, QAPair{Question: learnQuestion(n), Answers: []string{n}})
	}
	ctx := context.Background()
	evaluate := func(step int) float64 {
		e := *g
		e.Learner = frozenLearner{}
		e.Config.Game.SolverRollouts = 16
		res, err := e.Step(ctx, step)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := res.Metrics.Get("solver_reward")
		return r
	}
	out := learnResult{arm: arm, start: evaluate(1001)}
	for step := 1; step <= steps; step++ {
		res, err := g.Step(ctx, step)
		if err != nil {
			t.Fatalf("%s: %v", arm, err)
		}
		r, _ := res.Metrics.Get("solver_reward")
		out.rewards = append(out.rewards, r)
	}
	out.end = evaluate(1002)
	t.Logf("%-9s reward %.3f → %.3f; training steps, by fives: %s", arm, out.start, out.end, out.curve())
	return out
}

// learnModel is a randomly initialised two-layer Llama (init seed 1).
func learnModel(t *testing.T, vocab int) *model.Model {
	t.Helper()
	cfgJSON, err := json.Marshal(map[string]any{
		"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "max_position_embeddings": 64,
		"rope_theta": 10000.0, "tie_word_embeddings": true, "initializer_range": 0.02, "hidden_act": "silu",
		"vocab_size": vocab, "eos_token_id": 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.ParseConfig(cfgJSON)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Init(cfg, 1, model.LoadOptions{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// learnNote is the one document the search engine of TestGameStepsLearn
// returns, whatever the query.
const learnNote = "note\nThe passage is in the question."

// learnTokenizer has one piece per unit of the task: the end of sequence
// (id 0), the search call, an answer per name, the solver prompt (of the
// given set, rendered by PlainChat) before the name, the name with the rest
// of the prompt, the inserted search results, and "?" for anything else.
func learnTokenizer(set PromptSet) pieceTokenizer {
	pieces := []string{"", "<search> passage </search>"}
	for _, n := range learnNames {
		pieces = append(pieces, "<answer> "+n+" </answer>")
	}
	system, user := set.Solver(learnQuestion(learnNames[0]))
	prompt, err := PlainChat(system, user)
	if err != nil {
		panic(err)
	}
	prefix, rest, _ := strings.Cut(prompt, learnNames[0])
	pieces = append(pieces, prefix)
	for _, n := range learnNames {
		pieces = append(pieces, n+rest)
	}
	hits := []search.Hit{{Document: search.Document{ID: "note", Contents: learnNote}}}
	return pieceTokenizer{append(pieces, "\n\n<information>"+search.FormatHits(hits)+"</information>\n\n", "?")}
}

// pieceTokenizer encodes text as the longest piece at each point (a
// character no piece starts with becomes the last piece) and decodes by
// concatenation.
type pieceTokenizer struct{ pieces []string }

func (p pieceTokenizer) Encode(text string) []int32 {
	var ids []int32
	for text != "" {
		best, bestLen := int32(len(p.pieces)-1), 1
		for id, piece := range p.pieces {
			if len(piece) >= bestLen && strings.HasPrefix(text, piece) {
				best, bestLen = int32(id), len(piece)
			}
		}
		ids = append(ids, best)
		text = text[bestLen:]
	}
	return ids
}

func (p pieceTokenizer) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(p.pieces[id])
	}
	return b.String()
}

// noteSearcher returns learnNote for every query.
type noteSearcher struct{}

func (noteSearcher) Search(ctx context.Context, queries []string, topK int) ([][]search.Hit, error) {
	out := make([][]search.Hit, len(queries))
	for i := range queries {
		out[i] = []search.Hit{{Document: search.Document{ID: "note", Contents: learnNote}}}
	}
	return out, nil
}

// frozenLearner takes no step.
type frozenLearner struct{}

func (frozenLearner) PolicyStep(context.Context, model.PolicyBatch, model.PolicyLossConfig) (model.StepStats, error) {
	return model.StepStats{}, nil
}

// flippedLearner trains on negated advantages.
type flippedLearner struct{ Learner }

func (l flippedLearner) PolicyStep(ctx context.Context, b model.PolicyBatch, loss model.PolicyLossConfig) (model.StepStats, error) {
	flipped := make([][]float32, len(b.Advantages))
	for i, row := range b.Advantages {
		flipped[i] = make([]float32, len(row))
		for t, a := range row {
			flipped[i][t] = -a
		}
	}
	b.Advantages = flipped
	return l.Learner.PolicyStep(ctx, b, loss)
}
