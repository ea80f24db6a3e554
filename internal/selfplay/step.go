// Package selfplay implements search self-play (SSP, arXiv 2510.18821): one
// policy plays the proposer, which searches a corpus and writes a question
// for a given answer, and the solver, which answers such questions by
// searching. Questions are kept only if they pass rule filters and a RAG
// check (answerable from the proposer's own documents); the solver is
// rewarded for correct answers and the proposer for questions the solver
// finds hard. Both roles are trained with a clipped policy-gradient loss.
//
// Step (this file) is one iteration of the game and reads top to bottom:
// propose → filter → verify → solve → reward → update.
package selfplay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/score"
	"github.com/ssp-project/ssp/internal/search"
)

// Policy samples rollouts and scores token sequences, each at the
// temperature it was sampled at (nil: 1); *model.Model implements it.
type Policy interface {
	agent.Generator
	TokenLogProbs(ctx context.Context, seqs [][]int32, temperatures []float32) ([][]float32, error)
}

// Learner applies one clipped policy-gradient optimizer step;
// *model.Trainer implements it.
type Learner interface {
	PolicyStep(ctx context.Context, batch model.PolicyBatch, loss model.PolicyLossConfig) (model.StepStats, error)
}

// Matcher decides whether a predicted answer is correct when exact match
// says no (an LLM judge, such as (*judge.Judge).IsCorrect). An error means
// "unknown" and counts as wrong. It is called concurrently.
type Matcher func(ctx context.Context, question, prediction string, golds []string) (bool, error)

// Game holds everything one self-play step needs. Policy, Learner,
// Tokenizer, Searcher and Seeds are required, Reference when
// optim.kl_coef > 0; the other fields have defaults.
type Game struct {
	Config Config
	// Policy is trained; Reference is the frozen initial policy for the KL
	// penalty.
	Policy    Policy
	Reference Policy
	Learner   Learner
	Tokenizer agent.Tokenizer
	// EOSTokenIDs end generation.
	EOSTokenIDs []int32
	// Chat renders a system and a user message into prompt text with the
	// model's chat template; PlainChat when nil.
	Chat     func(system, user string) (string, error)
	Searcher search.Searcher
	Seeds    []Seed
	// QA holds questions with gold answers for game.problems "qa" (the
	// supervised baseline); self-play does not use it.
	QA []QAPair
	// ExtractAnswer returns the final <answer> of a response and ExactMatch
	// compares it to the accepted answers (score.ExtractAnswer and
	// score.ExactMatch when nil); Judge, if set, decides the cases exact
	// match rejects.
	ExtractAnswer func(response string) (string, bool)
	ExactMatch    func(prediction string, golds []string) bool
	Judge         Matcher
	// RAGAnswerer answers the RAG check when verify.rag_answerer is
	// "judge": it sends the RAG prompt's system and user messages to an
	// external chat model (such as (*judge.Judge).Chat) and returns the
	// reply. It is called concurrently; an error fails that question.
	RAGAnswerer func(ctx context.Context, system, user string) (string, error)
	// Pool refills failed proposal slots; it is saved with checkpoints.
	Pool *ProblemPool
	// Progress, if set, receives a line per phase and per step.
	Progress *Progress
}

// proposal is one proposer trajectory and what became of its question.
type proposal struct {
	Seed     Seed
	Group    int // index of the target answer in the step's batch
	Traj     agent.Trajectory
	Question string
	Verdicts []Verdict
	RAG      *agent.Trajectory // the verification answer, when run
	// Documents left out of the RAG prompt to fit verify.max_prompt_tokens:
	// distractors first, the proposer's own only when nothing else is left.
	RAGNoiseDropped, RAGOwnDropped int

	SuccessRate float64 // solvers' success rate, valid proposals only
	Reward      float64
	Advantage   float64
}

// Valid reports whether every check passed.
func (p *proposal) Valid() bool {
	for _, v := range p.Verdicts {
		if !v.Pass {
			return false
		}
	}
	return len(p.Verdicts) > 0
}

// problem is a question the solver plays this step.
type problem struct {
	Question string
	Answers  []string
	Proposal int // index into proposals, or -1 when reused from the pool
}

// QAPair is a question with its accepted answers.
type QAPair struct {
	Question string
	Answers  []string
}

// solution is one solver rollout.
type solution struct {
	Problem    int
	Traj       agent.Trajectory
	Prediction string
	Correct    bool
	AnswerTags int
	JudgeError string
	Reward     float64
	Advantage  float64
}

// StepResult is what one step produced, for the run directory.
type StepResult struct {
	Metrics  Metrics
	Rollouts []RolloutRecord
}

// Step plays and trains one iteration of the game. A step's randomness
// depends only on (run.seed, step), so a resumed run replays the same seeds.
func (g *Game) Step(ctx context.Context, step int) (*StepResult, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	cfg := g.Config
	rng := rand.New(rand.NewPCG(uint64(cfg.Run.Seed), uint64(step)))
	timer := newPhaseTimer()

	var proposals []proposal
	var problems []problem
	if cfg.Game.Problems == ProblemsQA {
		// Supervised baseline (Search-R1): questions with gold answers
		// from a dataset replace the proposer; steps 1-3 do not apply.
		problems = g.qaProblems(step)
	} else {
		// 1. Propose: for each target answer the policy searches the corpus
		//    and writes a question ending in <question>…</question>.
		timer.Start("propose")
		var err error
		proposals, err = g.propose(ctx, step)
		if err != nil {
			return nil, fmt.Errorf("step %d: propose: %w", step, err)
		}
		g.Progress.Phase(step, "proposing", len(proposals), "trajectories", timer.Elapsed())

		// 2. Filter: cheap rule checks, each recorded as a named verdict.
		timer.Start("filter")
		g.filter(proposals)

		// 3. Verify (RAG): answer each surviving question from all documents
		//    its proposer retrieved plus distractor blocks, without
		//    searching. Only questions answered correctly are valid; errors
		//    fail closed.
		timer.Start("verify")
		verified, err := g.verifyRAG(ctx, step, rng, proposals)
		if err != nil {
			return nil, fmt.Errorf("step %d: verify: %w", step, err)
		}
		g.Progress.Phase(step, "verifying", verified, "questions", timer.Elapsed())
		problems = g.problems(rng, proposals)
	}

	// 4. Solve: each valid question gets G search rollouts; slots of invalid
	//    proposals are refilled with earlier questions from the pool.
	timer.Start("solve")
	solutions, err := g.solve(ctx, step, problems)
	if err != nil {
		return nil, fmt.Errorf("step %d: solve: %w", step, err)
	}
	g.Progress.Phase(step, "solving", len(solutions), "trajectories", timer.Elapsed())

	// 5. Reward: solver 1/0 (divided for answer spamming); proposer 1-s on
	//    valid questions, the format penalty otherwise.
	timer.Start("reward")
	g.reward(proposals, problems, solutions)
	g.updatePool(step, proposals, problems, solutions)

	// 6. Advantages: GRPO over each question's G solver rollouts;
	//    REINFORCE++ (batch-whitened) or GRPO for the proposer.
	g.advantages(proposals, solutions)

	// 7. Update: clipped policy gradient with a KL penalty to the frozen
	//    initial policy; proposer then solver, or both at once.
	timer.Start("update")
	stats, err := g.update(ctx, rng, proposals, solutions)
	if err != nil {
		return nil, fmt.Errorf("step %d: update: %w", step, err)
	}
	g.Progress.Phase(step, "updating", stats.Tokens, "tokens", timer.Elapsed())
	timer.Stop()

	res := &StepResult{
		Metrics:  stepMetrics(step, proposals, problems, solutions, stats, timer),
		Rollouts: rolloutRecords(step, proposals, problems, solutions),
	}
	if cfg.Pool.ClearEvery > 0 && step%cfg.Pool.ClearEvery == 0 {
		g.Pool.Clear(cfg.Pool.KeepRatio)
	}
	return res, nil
}

func (g *Game) check() error {
	switch {
	case g.Policy == nil:
		return errors.New("selfplay: no policy")
	case g.Learner == nil:
		return errors.New("selfplay: no learner")
	case g.Tokenizer == nil:
		return errors.New("selfplay: no tokenizer")
	case g.Searcher == nil:
		return errors.New("selfplay: no searcher")
	case len(g.Seeds) == 0 && g.Config.Game.Problems != ProblemsQA:
		return errors.New("selfplay: no seeds")
	case len(g.QA) == 0 && g.Config.Game.Problems == ProblemsQA:
		return errors.New("selfplay: game.problems is \"qa\" but no QA pairs were given (run.qa_data)")
	case g.Config.Verify.RAG && g.Config.Verify.RAGAnswerer == RAGAnswererJudge && g.RAGAnswerer == nil && g.Config.Game.Problems != ProblemsQA:
		return errors.New("selfplay: verify.rag_answerer is \"judge\" but no RAG answerer was given")
	case g.Config.Optim.KLCoef > 0 && g.Reference == nil:
		return errors.New("selfplay: optim.kl_coef > 0 needs a reference policy")
	}
	if g.Pool == nil {
		g.Pool = &ProblemPool{}
	}

	return g.Config.Validate()
}

// propose runs one proposer trajectory per (target answer, rollout).
func (g *Game) propose(ctx context.Context, step int) ([]proposal, error) {
	cfg := g.Config
	seeds := g.stepSeeds(step)
	var proposals []proposal
	var prompts [][]int32
	for i, seed := range seeds {
		hops := seed.Hops
		if hops == 0 {
			hops = max(cfg.Filter.MinSearches, 1)
		}
		system, user := g.prompts().Proposer(seed, hops)
		ids, err := g.encodePrompt(system, user)
		if err != nil {
			return nil, fmt.Errorf("target answer %q: %w", seed.Answers[0], err)
		}
		for range cfg.Game.ProposerRollouts {
			proposals = append(proposals, proposal{Seed: seed, Group: i})
			prompts = append(prompts, ids)
		}
	}
	trajs, err := agent.Run(ctx, g.Policy, g.Tokenizer, g.Searcher, prompts,
		g.agentConfig("question", true, cfg.Proposer.Temperature, cfg.Proposer.TopP, phaseSeed(cfg, step, 1)))
	if err != nil {
		return nil, err
	}
	for i := range proposals {
		proposals[i].Traj = trajs[i]
	}
	return proposals, nil
}

// filter extracts each question and applies the rule checks.
func (g *Game) filter(proposals []proposal) {
	cfg := g.Config.Filter
	questions := make([]string, len(proposals))
	for i := range proposals {
		p := &proposals[i]
		q, v := ExtractQuestion(p.Traj.Response)
		p.Verdicts = append(p.Verdicts, v)
		if !v.Pass {
			continue
		}
		p.Question = q
		queries := p.Traj.Queries()
		p.Verdicts = append(p.Verdicts,
			CheckLength(q, cfg),
			CheckAnswerLeak(q, p.Seed.Answers),
			CheckRetrieved(&p.Traj),
			CheckSearchCount(queries, cfg.MinSearches, p.Seed.Hops, cfg.RequireHops),
		)
		if cfg.RejectAnswerInQueries {
			p.Verdicts = append(p.Verdicts, CheckAnswerInQueries(queries, p.Seed.Answers))
		}
		if cfg.RequireAnswerEvidence {
			p.Verdicts = append(p.Verdicts, CheckAnswerEvidence(&p.Traj, p.Seed.Answers))
		}
		if cfg.GroundedSearches {
			p.Verdicts = append(p.Verdicts, CheckGroundedSearches(p.Traj.Searches, p.Seed.Answers))
		}
		if p.Valid() {
			questions[i] = q
		}
	}
	// Only questions that passed every other check compete for uniqueness,
	// so an invalid near-copy cannot knock out a valid question.
	for i, j := range NearDuplicates(questions, cfg.DuplicateJaccard) {
		switch {
		case questions[i] == "":
		case j >= 0:
			proposals[i].Verdicts = append(proposals[i].Verdicts, fail(FilterDuplicate, "near-duplicate of proposal %d", j))
		default:
			proposals[i].Verdicts = append(proposals[i].Verdicts, pass(FilterDuplicate))
		}
	}
}

// verifyRAG answers every still-valid question from its proposer's
// documents mixed with noise blocks and records the FilterRAG verdict. It
// returns the number of questions checked.
func (g *Game) verifyRAG(ctx context.Context, step int, rng *rand.Rand, proposals []proposal) (int, error) {
	cfg := g.Config
	if !cfg.Verify.RAG {
		return 0, nil
	}
	// Every search-result block of the batch, by owner, for distractors.
	type block struct {
		owner int
		docs  []search.Document
	}
	var blocks []block
	for i := range proposals {
		for _, s := range proposals[i].Traj.Searches {
			if len(s.Documents) > 0 {
				blocks = append(blocks, block{i, s.Documents})
			}
		}
	}

	var checked []int
	var prompts []ragPrompt
	for i := range proposals {
		p := &proposals[i]
		if !p.Valid() {
			continue
		}
		own := p.Traj.Documents()
		var others []block
		for _, b := range blocks {
			if b.owner != i {
				others = append(others, b)
			}
		}
		var noise []search.Document
		for _, k := range rng.Perm(len(others))[:min(cfg.Verify.NoiseBlocks, len(others))] {
			noise = appendNewDocs(noise, others[k].docs)
		}
		noise = newDocs(own, noise)
		prompt, droppedOwn, droppedNoise, err := g.encodeRAGPrompt(rng, p.Question, own, noise)
		if err != nil {
			return 0, fmt.Errorf("question %q: %w", p.Question, err)
		}
		p.RAGOwnDropped, p.RAGNoiseDropped = droppedOwn, droppedNoise
		checked = append(checked, i)
		prompts = append(prompts, prompt)
	}
	if len(prompts) == 0 {
		return 0, nil
	}
	var trajs []agent.Trajectory
	var answerErrs []error
	var err error
	if cfg.Verify.RAGAnswerer == RAGAnswererJudge {
		trajs, answerErrs, err = g.answerRAGExternally(ctx, prompts)
	} else {
		trajs, err = g.answerRAGWithPolicy(ctx, step, prompts)
		answerErrs = make([]error, len(trajs))
	}
	if err != nil {
		return 0, err
	}
	grades := make([]grade, len(checked))
	for k, i := range checked {
		grades[k] = grade{question: proposals[i].Question, response: trajs[k].Response, golds: proposals[i].Seed.Answers}
	}
	if err := g.gradeAll(ctx, grades); err != nil {
		return 0, err
	}
	for k, i := range checked {
		p := &proposals[i]
		p.RAG = &trajs[k]
		switch gr := grades[k]; {
		case answerErrs[k] != nil:
			p.Verdicts = append(p.Verdicts, fail(FilterRAG, "RAG answerer error (fails closed): %v", answerErrs[k]))
		case gr.err != nil:
			p.Verdicts = append(p.Verdicts, fail(FilterRAG, "judge error (fails closed): %v", gr.err))
		case !gr.correct && p.RAGOwnDropped > 0:
			p.Verdicts = append(p.Verdicts, fail(FilterRAG, "RAG answer %q is not the target (%d of the proposer's documents left out to fit verify.max_prompt_tokens)", gr.prediction, p.RAGOwnDropped))
		case !gr.correct:
			p.Verdicts = append(p.Verdicts, fail(FilterRAG, "RAG answer %q is not the target", gr.prediction))
		default:
			p.Verdicts = append(p.Verdicts, pass(FilterRAG))
		}
	}
	return len(checked), nil
}

// answerRAGWithPolicy has the policy answer each RAG prompt in one turn,
// without search.
func (g *Game) answerRAGWithPolicy(ctx context.Context, step int, prompts []ragPrompt) ([]agent.Trajectory, error) {
	ids := make([][]int32, len(prompts))
	for k, p := range prompts {
		ids[k] = p.ids
	}
	acfg := g.agentConfig("answer", false, g.Config.Verify.Temperature, 1, phaseSeed(g.Config, step, 2))
	acfg.MaxTurns = 1
	return agent.Run(ctx, g.Policy, g.Tokenizer, nil, ids, acfg)
}

// answerRAGExternally sends each RAG prompt to Game.RAGAnswerer
// (concurrently) and records each reply as a one-turn trajectory without
// tokens. A failed request is that question's error (it fails closed);
// only a cancelled context is an error of the whole check.
func (g *Game) answerRAGExternally(ctx context.Context, prompts []ragPrompt) ([]agent.Trajectory, []error, error) {
	trajs := make([]agent.Trajectory, len(prompts))
	errs := make([]error, len(prompts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, judgeConcurrency)
	for k := range prompts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			reply, err := g.RAGAnswerer(ctx, prompts[k].system, prompts[k].user)
			reply = externalRAGReply(reply)
			trajs[k] = agent.Trajectory{Response: reply, Generated: reply, Turns: 1, Finish: agent.FinishAnswer}
			errs[k] = err
		}()
	}
	wg.Wait()
	return trajs, errs, ctx.Err()
}

// externalRAGReply reads an external model's RAG answer: the reply itself
// when it has an <answer> tag, else the text after its last "Answer:" (the
// form SSP's answering prompt asks for) put in tags, else the reply.
func externalRAGReply(reply string) string {
	if strings.Contains(reply, "<answer>") {
		return reply
	}
	if at := strings.LastIndex(strings.ToLower(reply), "answer:"); at >= 0 {
		answer := strings.TrimSpace(reply[at+len("answer:"):])
		if line, _, _ := strings.Cut(answer, "\n"); line != "" {
			return reply + "\n<answer> " + line + " </answer>"
		}
	}
	return reply
}

// problems lists the questions the solver plays: every valid proposal's,
// then earlier ones from the pool (in pool.order) in the slots of invalid
// proposals.
func (g *Game) problems(rng *rand.Rand, proposals []proposal) []problem {
	var problems []problem
	missing := 0
	for i := range proposals {
		if proposals[i].Valid() {
			problems = append(problems, problem{Question: proposals[i].Question, Answers: proposals[i].Seed.Answers, Proposal: i})
		} else {
			missing++
		}
	}
	if g.Config.Pool.Reuse {
		for _, prob := range g.Pool.Take(missing, g.Config.Pool.MaxSuccessRate, g.Config.Pool.Order, rng) {
			problems = append(problems, problem{Question: prob.Question, Answers: prob.Answers, Proposal: -1})
		}
	}
	return problems
}

// solve runs G solver rollouts per problem and grades them.
func (g *Game) solve(ctx context.Context, step int, problems []problem) ([]solution, error) {
	cfg := g.Config
	var solutions []solution
	var prompts [][]int32
	for k, prob := range problems {
		system, user := g.prompts().Solver(prob.Question)
		ids, err := g.encodePrompt(system, user)
		if err != nil {
			return nil, fmt.Errorf("question %q: %w", prob.Question, err)
		}
		for range cfg.Game.SolverRollouts {
			solutions = append(solutions, solution{Problem: k})
			prompts = append(prompts, ids)
		}
	}
	if len(prompts) == 0 {
		return nil, nil
	}
	trajs, err := agent.Run(ctx, g.Policy, g.Tokenizer, g.Searcher, prompts,
		g.agentConfig("answer", true, cfg.Solver.Temperature, cfg.Solver.TopP, phaseSeed(cfg, step, 3)))
	if err != nil {
		return nil, err
	}
	for i := range solutions {
		solutions[i].Traj = trajs[i]
	}
	grades := make([]grade, len(solutions))
	for i, s := range solutions {
		prob := problems[s.Problem]
		grades[i] = grade{question: prob.Question, response: s.Traj.Response, golds: prob.Answers}
	}
	if err := g.gradeAll(ctx, grades); err != nil {
		return nil, err
	}
	for i := range solutions {
		s := &solutions[i]
		if grades[i].err != nil {
			s.JudgeError = grades[i].err.Error()
		}
		s.Prediction, s.Correct = grades[i].prediction, grades[i].correct
		s.AnswerTags = score.CountAnswerTags(s.Traj.Generated)
	}
	return solutions, nil
}

// grade is one response to check against the accepted answers.
type grade struct {
	question, response string
	golds              []string

	prediction string
	correct    bool
	err        error // the judge's; the response counts as wrong
}

// judgeConcurrency bounds the judge calls in flight.
const judgeConcurrency = 16

// gradeAll extracts each final answer and checks it: exact match first,
// then the judge, if one is configured, for the misses (concurrently, as
// judge calls are slow). Only a cancelled context is an error.
func (g *Game) gradeAll(ctx context.Context, grades []grade) error {
	extract, exact := g.ExtractAnswer, g.ExactMatch
	if extract == nil {
		extract = score.ExtractAnswer
	}
	if exact == nil {
		exact = score.ExactMatch
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, judgeConcurrency)
	for i := range grades {
		gr := &grades[i]
		pred, ok := extract(gr.response)
		if !ok {
			continue
		}
		gr.prediction = pred
		if gr.correct = exact(pred, gr.golds); gr.correct || g.Judge == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			gr.correct, gr.err = g.Judge(ctx, gr.question, gr.prediction, gr.golds)
			if gr.err != nil {
				gr.correct = false
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// reward fills solver rewards, per-question success rates and proposer
// rewards.
func (g *Game) reward(proposals []proposal, problems []problem, solutions []solution) {
	cfg := g.Config
	for i := range solutions {
		s := &solutions[i]
		s.Reward = SolverReward(s.Correct, s.AnswerTags, cfg.Solver.MaxAnswerTags, cfg.Solver.MultiAnswerDivisor)
	}
	rates := successRates(problems, solutions)
	for i := range proposals {
		p := &proposals[i]
		p.Reward = cfg.Proposer.FormatPenalty
	}
	for k, prob := range problems {
		if prob.Proposal >= 0 {
			p := &proposals[prob.Proposal]
			p.SuccessRate = rates[k]
			p.Reward = ProposerReward(rates[k], cfg.Proposer.Reward)
		}
	}
}

// successRates is the fraction of correct rollouts per problem (answer
// spamming lowers the solver's reward, not the question's difficulty).
func successRates(problems []problem, solutions []solution) []float64 {
	correct := make([]float64, len(problems))
	total := make([]float64, len(problems))
	for _, s := range solutions {
		total[s.Problem]++
		if s.Correct {
			correct[s.Problem]++
		}
	}
	rates := make([]float64, len(problems))
	for k := range problems {
		if total[k] > 0 {
			rates[k] = correct[k] / total[k]
		}
	}
	return rates
}

// updatePool adds this step's valid questions to the pool and refreshes
// the success rates of reused ones.
func (g *Game) updatePool(step int, proposals []proposal, problems []problem, solutions []solution) {
	rates := successRates(problems, solutions)
	for k, prob := range problems {
		if prob.Proposal >= 0 {
			g.Pool.Add(Problem{Question: prob.Question, Answers: prob.Answers, SuccessRate: rates[k], AddedStep: step}, g.Config.Pool.MaxSize)
		} else {
			g.Pool.Update(prob.Question, rates[k])
		}
	}
}

// advantages fills per-trajectory advantages.
func (g *Game) advantages(proposals []proposal, solutions []solution) {
	eps := g.Config.Optim.AdvantageEps
	rewards := make([]float64, len(solutions))
	groups := make([]int, len(solutions))
	for i, s := range solutions {
		rewards[i], groups[i] = s.Reward, s.Problem
	}
	for i, a := range GRPOAdvantages(rewards, groups, eps) {
		solutions[i].Advantage = a
	}

	rewards = make([]float64, len(proposals))
	groups = make([]int, len(proposals))
	for i, p := range proposals {
		rewards[i], groups[i] = p.Reward, p.Group
	}
	var adv []float64
	if g.Config.Proposer.Advantage == "grpo" {
		adv = GRPOAdvantages(rewards, groups, eps)
	} else {
		adv = WhitenedAdvantages(rewards, eps)
	}
	for i, a := range adv {
		proposals[i].Advantage = a
	}
}

// update trains on the step's trajectories: proposer then solver (SSP's
// default), or one combined update.
func (g *Game) update(ctx context.Context, rng *rand.Rand, proposals []proposal, solutions []solution) (model.StepStats, error) {
	cfg := g.Config
	var proposer, solver []trained
	if cfg.Game.TrainProposer {
		for i := range proposals {
			proposer = append(proposer, trained{&proposals[i].Traj, proposals[i].Advantage, cfg.Proposer.Temperature})
		}
	}
	if cfg.Game.TrainSolver {
		var varied map[int]bool
		if cfg.Solver.FilterGroups {
			_, varied = informativeProblems(solutions)
		}
		for i := range solutions {
			if cfg.Solver.FilterGroups && !varied[solutions[i].Problem] {
				continue // advantage 0 on every rollout of this question
			}
			solver = append(solver, trained{&solutions[i].Traj, solutions[i].Advantage, cfg.Solver.Temperature})
		}
	}
	updates := [][]trained{proposer, solver}
	if cfg.Game.CombinedUpdate {
		updates = [][]trained{append(proposer, solver...)}
	}
	var total statsSum
	for _, u := range updates {
		if len(u) == 0 {
			continue
		}
		rng.Shuffle(len(u), func(a, b int) { u[a], u[b] = u[b], u[a] })
		for _, part := range miniBatches(len(u), cfg.Optim.MiniBatches) {
			if zs, ok := g.Learner.(zeroStepper); ok && cfg.Optim.KLCoef == 0 && allZeroAdvantage(u[part[0]:part[1]]) {
				// Nothing to learn: the gradient is exactly zero, so only
				// the optimizer's own motion (momentum, weight decay) is
				// applied, without running the model.
				stats, err := zs.ZeroGradientStep(ctx)
				if err != nil {
					return model.StepStats{}, err
				}
				total.add(stats)
				continue
			}
			batch, err := g.policyBatch(ctx, u[part[0]:part[1]])
			if err != nil {
				return model.StepStats{}, err
			}
			stats, err := g.Learner.PolicyStep(ctx, batch, model.PolicyLossConfig{
				ClipLow: cfg.Optim.ClipLow, ClipHigh: cfg.Optim.ClipHigh, DualClip: cfg.Optim.DualClip,
				KLCoef: cfg.Optim.KLCoef, KLClamp: cfg.Optim.KLClamp})
			if err != nil {
				return model.StepStats{}, err
			}
			total.add(stats)
		}
	}
	return total.mean(), nil
}

// zeroStepper is a Learner that can take the optimizer step of a batch
// whose gradient is exactly zero without running the model
// (*model.Trainer).
type zeroStepper interface {
	ZeroGradientStep(ctx context.Context) (model.StepStats, error)
}

// allZeroAdvantage reports whether no trajectory has anything to learn:
// with every advantage 0 the PPO term and its gradient are exactly 0 (the
// KL term is not, once the policy has left the reference, so the caller
// also requires optim.kl_coef 0).
func allZeroAdvantage(items []trained) bool {
	for _, it := range items {
		if it.advantage != 0 {
			return false
		}
	}
	return true
}

// miniBatches splits n items into min(n, parts) contiguous ranges [lo, hi)
// whose sizes differ by at most one.
func miniBatches(n, parts int) [][2]int {
	parts = max(1, min(n, parts))
	out := make([][2]int, 0, parts)
	for k := range parts {
		out = append(out, [2]int{k * n / parts, (k + 1) * n / parts})
	}
	return out
}

// trained is a trajectory with its advantage and the temperature it was
// sampled at.
type trained struct {
	traj        *agent.Trajectory
	advantage   float64
	temperature float32
}

// policyBatch lays trajectories out for the learner, with reference
// log-probs from the frozen policy when the KL penalty is on. Old, new and
// reference log-probs are all taken at each trajectory's sampling
// temperature, softmax(logits/T), as verl does: the rollout's log-probs are
// recorded at T, and the learner and the reference score at T.
func (g *Game) policyBatch(ctx context.Context, items []trained) (model.PolicyBatch, error) {
	var b model.PolicyBatch
	for _, it := range items {
		b.Sequences = append(b.Sequences, it.traj.Tokens)
		b.LossMask = append(b.LossMask, it.traj.LossMask)
		b.OldLogProbs = append(b.OldLogProbs, it.traj.LogProbs)
		b.Advantages = append(b.Advantages, TokenAdvantages(it.advantage, it.traj.LossMask))
		b.Temperatures = append(b.Temperatures, it.temperature)
	}
	if g.Config.Optim.KLCoef > 0 {
		ref, err := g.Reference.TokenLogProbs(ctx, b.Sequences, b.Temperatures)
		if err != nil {
			return b, fmt.Errorf("reference log-probs: %w", err)
		}
		if len(ref) != len(b.Sequences) {
			return b, fmt.Errorf("reference log-probs: %d rows for %d sequences", len(ref), len(b.Sequences))
		}
		for i := range ref {
			if len(ref[i]) != len(b.Sequences[i]) {
				return b, fmt.Errorf("reference log-probs: row %d has %d entries for %d tokens", i, len(ref[i]), len(b.Sequences[i]))
			}
		}
		b.RefLogProbs = ref
	}
	return b, nil
}

// statsSum averages optimizer statistics over steps, weighted by tokens.
type statsSum struct {
	n, tokens, skipped                        int
	loss, policy, kl, entropy, clip, gradNorm float64
	lr                                        float64
}

func (s *statsSum) add(st model.StepStats) {
	w := float64(st.Tokens)
	s.n++
	s.tokens += st.Tokens
	s.skipped += st.Skipped
	s.loss += w * st.Loss
	s.policy += w * st.PolicyLoss
	s.kl += w * st.KL
	s.entropy += w * st.Entropy
	s.clip += w * st.ClipFraction
	s.gradNorm = max(s.gradNorm, st.GradNorm)
	s.lr = st.LR
}

func (s *statsSum) mean() model.StepStats {
	if s.tokens == 0 {
		return model.StepStats{LR: s.lr, GradNorm: s.gradNorm, Skipped: s.skipped}
	}
	w := float64(s.tokens)
	return model.StepStats{Loss: s.loss / w, PolicyLoss: s.policy / w, KL: s.kl / w, Entropy: s.entropy / w,
		ClipFraction: s.clip / w, GradNorm: s.gradNorm, LR: s.lr, Tokens: s.tokens, Skipped: s.skipped}
}

// stepSeeds picks the step's target answers: the seed file is walked in a
// fresh random order each epoch.
func (g *Game) stepSeeds(step int) []Seed {
	out := make([]Seed, g.Config.Game.BatchSize)
	for i, k := range epochOrder(g.Config.Run.Seed, 1<<40, len(g.Seeds), len(out), step) {
		out[i] = g.Seeds[k]
	}
	return out
}

// qaProblems picks the step's questions from the QA data the same way.
func (g *Game) qaProblems(step int) []problem {
	out := make([]problem, g.Config.Game.BatchSize)
	for i, k := range epochOrder(g.Config.Run.Seed, 2<<40, len(g.QA), len(out), step) {
		out[i] = problem{Question: g.QA[k].Question, Answers: g.QA[k].Answers, Proposal: -1}
	}
	return out
}

// epochOrder returns the indices (of n items) that step's batch takes when
// the items are walked in a fresh random order each epoch, the order fixed
// by (seed, stream, epoch), so a resumed run replays the same batches.
func epochOrder(seed int64, stream uint64, n, batch, step int) []int {
	out := make([]int, batch)
	var perm []int
	permEpoch := -1
	for i := range out {
		k := (step-1)*batch + i
		if epoch := k / n; epoch != permEpoch {
			perm = rand.New(rand.NewPCG(uint64(seed), stream+uint64(epoch))).Perm(n)
			permEpoch = epoch
		}
		out[i] = perm[k%n]
	}
	return out
}

// prompts is the configured prompt set (game.prompts, checked by Validate).
func (g *Game) prompts() PromptSet {
	set, err := Prompts(g.Config.Game.Prompts)
	if err != nil {
		set, _ = Prompts(PromptsSSPShort)
	}
	return set
}

// agentConfig is the search loop's configuration for one role.
func (g *Game) agentConfig(finalTag string, searching bool, temperature, topP float32, seed int64) agent.Config {
	a := g.Config.Agent
	return agent.Config{
		FinalTag: finalTag, Search: searching,
		MaxTurns: a.MaxTurns, MaxTokensPerTurn: a.MaxTokensPerTurn, MaxResponseTokens: a.MaxResponseTokens,
		TopK: a.TopK, MaxInformationChars: a.MaxInformationChars,
		Temperature: temperature, TopP: topP, Seed: seed, EOSTokenIDs: g.EOSTokenIDs,
	}
}

// phaseSeed gives each (step, phase) its own sampling seed.
func phaseSeed(cfg Config, step, phase int) int64 {
	return cfg.Run.Seed*1_000_003 + int64(step)*16 + int64(phase)
}

func (g *Game) encodePrompt(system, user string) ([]int32, error) {
	return g.encodeWithin(system, user, g.Config.Agent.MaxPromptTokens, "agent.max_prompt_tokens")
}

// encodeWithin renders and encodes a prompt that must have at most limit
// tokens (key names the limit in the error).
func (g *Game) encodeWithin(system, user string, limit int, key string) ([]int32, error) {
	chat := g.Chat
	if chat == nil {
		chat = PlainChat
	}
	text, err := chat(system, user)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	ids := g.Tokenizer.Encode(text)
	if len(ids) > limit {
		return nil, fmt.Errorf("prompt has %d tokens, more than %s %d", len(ids), key, limit)
	}
	return ids, nil
}

// encodeRAGPrompt encodes the RAG check's prompt: the proposer's own
// documents and the noise documents in one random order, within
// verify.max_prompt_tokens. When they do not all fit, noise documents go
// first (later blocks before earlier ones); the proposer's own documents
// go, in random order, only when no noise is left. It returns the prompt
// and how many documents of each kind were left out.
func (g *Game) encodeRAGPrompt(rng *rand.Rand, question string, own, noise []search.Document) (prompt ragPrompt, droppedOwn, droppedNoise int, err error) {
	// rank is a document's place in the dropping order within its kind;
	// the prompt shows the kept documents in the shuffled order.
	type ragDoc struct {
		doc  search.Document
		own  bool
		rank int
	}
	all := make([]ragDoc, 0, len(own)+len(noise))
	for _, d := range own {
		all = append(all, ragDoc{doc: d, own: true})
	}
	for k, d := range noise {
		all = append(all, ragDoc{doc: d, rank: k})
	}
	rng.Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
	ownRank := 0
	for k := range all {
		if all[k].own {
			all[k].rank = ownRank
			ownRank++
		}
	}
	limit := g.Config.Verify.PromptTokens(g.Config.Agent)
	try := func(keepOwn, keepNoise int) (ragPrompt, error) {
		var docs []search.Document
		for _, d := range all {
			if (d.own && d.rank < keepOwn) || (!d.own && d.rank < keepNoise) {
				docs = append(docs, d.doc)
			}
		}
		var p ragPrompt
		var err error
		p.system, p.user = g.prompts().RAG(question, docs)
		p.ids, err = g.encodeWithin(p.system, p.user, limit, "verify.max_prompt_tokens")
		return p, err
	}
	// largest returns the largest k in [0, n] for which fits(k) holds,
	// assuming fits is monotone and fits(0) was checked by the caller.
	largest := func(n int, fits func(int) bool) int {
		lo, hi := 0, n
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if fits(mid) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		return lo
	}
	if p, err := try(len(own), len(noise)); err == nil {
		return p, 0, 0, nil
	}
	keepOwn, keepNoise := len(own), 0
	if _, err := try(keepOwn, 0); err == nil {
		keepNoise = largest(len(noise), func(k int) bool { _, err := try(keepOwn, k); return err == nil })
	} else {
		if _, err := try(0, 0); err != nil {
			return ragPrompt{}, 0, 0, err
		}
		keepOwn = largest(len(own), func(k int) bool { _, err := try(k, 0); return err == nil })
	}
	prompt, err = try(keepOwn, keepNoise)
	return prompt, len(own) - keepOwn, len(noise) - keepNoise, err
}

// ragPrompt is one RAG check's prompt: the messages and their encoding.
type ragPrompt struct {
	system, user string
	ids          []int32
}

// newDocs returns the documents of extra that docs does not hold.
func newDocs(docs, extra []search.Document) []search.Document {
	return appendNewDocs(docs[:len(docs):len(docs)], extra)[len(docs):]
}

// appendNewDocs appends the documents of extra that docs does not hold yet.
func appendNewDocs(docs, extra []search.Document) []search.Document {
	seen := map[string]bool{}
	for _, d := range docs {
		seen[d.ID+"\x00"+d.Contents] = true
	}
	for _, d := range extra {
		if key := d.ID + "\x00" + d.Contents; !seen[key] {
			seen[key] = true
			docs = append(docs, d)
		}
	}
	return docs
}

// phaseTimer measures consecutive phases of a step.
type phaseTimer struct {
	begin   time.Time
	current string
	since   time.Time
	order   []string
	total   map[string]time.Duration
}

func newPhaseTimer() *phaseTimer {
	now := time.Now()
	return &phaseTimer{begin: now, since: now, total: map[string]time.Duration{}}
}

// Start ends the current phase and starts the named one.
func (t *phaseTimer) Start(name string) {
	t.Stop()
	t.current, t.since = name, time.Now()
	if _, ok := t.total[name]; !ok {
		t.order = append(t.order, name)
	}
}

// Stop ends the current phase.
func (t *phaseTimer) Stop() {
	if t.current != "" {
		t.total[t.current] += time.Since(t.since)
		t.current = ""
	}
}

// Elapsed is the time spent in the current phase so far.
func (t *phaseTimer) Elapsed() time.Duration { return time.Since(t.since) }
