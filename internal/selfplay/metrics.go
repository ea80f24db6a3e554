package selfplay

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/search"
)

// Metric is one named scalar of a step.
type Metric struct {
	Name  string
	Value float64
}

// Metrics are a step's scalars in a stable order; the same names go to
// metrics.jsonl and TensorBoard.
type Metrics []Metric

// Get returns the named value.
func (m Metrics) Get(name string) (float64, bool) {
	for _, x := range m {
		if x.Name == name {
			return x.Value, true
		}
	}
	return 0, false
}

// MarshalJSON writes one flat object in order; non-finite values become null.
func (m Metrics) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, x := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(x.Name)
		b.Write(name)
		b.WriteByte(':')
		if math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
			b.WriteString("null")
		} else {
			b.WriteString(strconv.FormatFloat(x.Value, 'g', -1, 64))
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func stepMetrics(step int, proposals []proposal, problems []problem, solutions []solution, stats model.StepStats, timer *phaseTimer) Metrics {
	var proposerReward, solverReward, correct float64
	var valid, ragChecked, ragPassed, reused, judgeErrors, ragNoiseDropped, ragOwnDropped int
	var validHops, validSearches float64
	var generated int
	rejected := map[string]int{}
	for i := range proposals {
		p := &proposals[i]
		proposerReward += p.Reward
		generated += p.Traj.GeneratedTokens
		if p.RAG != nil {
			generated += p.RAG.GeneratedTokens
			ragChecked++
		}
		ragNoiseDropped += p.RAGNoiseDropped
		ragOwnDropped += p.RAGOwnDropped
		for _, v := range p.Verdicts {
			switch {
			case !v.Pass:
				rejected[v.Filter]++
			case v.Filter == FilterRAG:
				ragPassed++
			}
		}
		if p.Valid() {
			valid++
			validHops += float64(p.Seed.Hops)
			validSearches += float64(distinctQueries(p.Traj.Queries()))
		}
	}
	for _, prob := range problems {
		// In self-play, a problem without a proposal came from the pool; with
		// game.problems "qa" there are no proposals and nothing is reused.
		if prob.Proposal < 0 && len(proposals) > 0 {
			reused++
		}
	}
	groups, informative := solverGroups(solutions)
	for _, s := range solutions {
		solverReward += s.Reward
		generated += s.Traj.GeneratedTokens
		if s.Correct {
			correct++
		}
		if s.JudgeError != "" {
			judgeErrors++
		}
	}
	total := 0.0
	for _, d := range timer.total {
		total += d.Seconds()
	}
	m := Metrics{
		{"step", float64(step)},
		{"proposer_reward", mean(proposerReward, len(proposals))},
		{"solver_reward", mean(solverReward, len(solutions))},
		{"valid_question_rate", mean(float64(valid), len(proposals))},
		{"rag_pass_rate", mean(float64(ragPassed), ragChecked)},
		{"rag/noise_docs_dropped", float64(ragNoiseDropped)},
		{"rag/own_docs_dropped", float64(ragOwnDropped)},
		{"solver_accuracy", mean(correct, len(solutions))},
		{"policy_loss", stats.PolicyLoss},
		{"kl", stats.KL},
		{"entropy", stats.Entropy},
		{"loss", stats.Loss},
		{"clip_fraction", stats.ClipFraction},
		{"grad_norm", stats.GradNorm},
		{"lr", stats.LR},
		{"tokens_generated", float64(generated)},
		{"tokens_trained", float64(stats.Tokens)},
		{"updates_skipped", float64(stats.Skipped)},
		{"questions_valid", float64(valid)},
		{"questions_reused", float64(reused)},
		{"solver_rollouts", float64(len(solutions))},
		{"solver_groups", float64(groups)},
		{"solver_groups_informative", float64(informative)},
		{"judge_errors", float64(judgeErrors)},
		{"proposer_turns", meanTurns(proposals)},
		{"valid_question_hops", mean(validHops, valid)},
		{"valid_question_searches", mean(validSearches, valid)},
		{"step_seconds", total},
	}
	for _, f := range []string{FilterExtract, FilterLength, FilterAnswerLeak, FilterRetrieved, FilterSearchCount,
		FilterAnswerInQueries, FilterAnswerEvidence, FilterGroundedSearches, FilterDuplicate, FilterRAG} {
		m = append(m, Metric{"rejected/" + f, float64(rejected[f])})
	}
	for _, name := range timer.order {
		m = append(m, Metric{"time/" + name, timer.total[name].Seconds()})
	}
	return m
}

func mean(sum float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func meanTurns(proposals []proposal) float64 {
	sum := 0
	for i := range proposals {
		sum += proposals[i].Traj.Turns
	}
	return mean(float64(sum), len(proposals))
}

// RolloutRecord is one trajectory in rollouts/step-N.jsonl.
type RolloutRecord struct {
	Step        int       `json:"step"`
	Role        string    `json:"role"` // "proposer", "rag" or "solver"
	Answers     []string  `json:"answers"`
	Question    string    `json:"question,omitempty"`
	Source      string    `json:"source,omitempty"` // solver: "proposed" or "pool"
	Response    string    `json:"response"`
	Queries     []string  `json:"queries,omitempty"`
	Turns       int       `json:"turns"`
	Finish      string    `json:"finish"`
	Prediction  string    `json:"prediction,omitempty"`
	Correct     *bool     `json:"correct,omitempty"`
	Valid       *bool     `json:"valid,omitempty"`
	Verdicts    []Verdict `json:"verdicts,omitempty"`
	SuccessRate *float64  `json:"success_rate,omitempty"`
	Reward      float64   `json:"reward"`
	Advantage   float64   `json:"advantage"`
	JudgeError  string    `json:"judge_error,omitempty"`
}

func rolloutRecords(step int, proposals []proposal, problems []problem, solutions []solution) []RolloutRecord {
	var recs []RolloutRecord
	for i := range proposals {
		p := &proposals[i]
		valid := p.Valid()
		r := trajRecord(step, "proposer", p.Seed.Answers, p.Question, &p.Traj)
		r.Valid, r.Verdicts, r.Reward, r.Advantage = &valid, p.Verdicts, p.Reward, p.Advantage
		if valid {
			s := p.SuccessRate
			r.SuccessRate = &s
		}
		recs = append(recs, r)
		if p.RAG != nil {
			recs = append(recs, trajRecord(step, "rag", p.Seed.Answers, p.Question, p.RAG))
		}
	}
	for i := range solutions {
		s := &solutions[i]
		prob := problems[s.Problem]
		r := trajRecord(step, "solver", prob.Answers, prob.Question, &s.Traj)
		r.Source = "proposed"
		if prob.Proposal < 0 {
			r.Source = "pool"
		}
		correct := s.Correct
		r.Prediction, r.Correct, r.Reward, r.Advantage, r.JudgeError = s.Prediction, &correct, s.Reward, s.Advantage, s.JudgeError
		recs = append(recs, r)
	}
	return recs
}

// SearchCalls rebuilds the record's searches from its response: each query
// with the text of the <information> block that followed it (one document
// holding the block as shown; none for a search the trajectory had no room
// to answer). CheckGroundedSearches over them reads what the proposer read.
func (r RolloutRecord) SearchCalls() []agent.SearchCall {
	calls := make([]agent.SearchCall, len(r.Queries))
	rest := r.Response
	for i := range calls {
		calls[i].Query = r.Queries[i]
		_, after, ok := strings.Cut(rest, "<information>")
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "</information>")
		calls[i].Documents = []search.Document{{Contents: block}}
		rest = tail
	}
	return calls
}

func trajRecord(step int, role string, answers []string, question string, t *agent.Trajectory) RolloutRecord {
	return RolloutRecord{Step: step, Role: role, Answers: answers, Question: question, Response: t.Response,
		Queries: t.Queries(), Turns: t.Turns, Finish: string(t.Finish)}
}

// solverGroups counts the step's questions that the solver answered and
// those of them whose rollouts did not all earn the same reward. Only those
// teach the solver anything: a group-relative advantage is zero for every
// rollout of a group whose rewards are equal (all right or all wrong), so
// the update on such a group is only its KL pull to the reference.
func solverGroups(solutions []solution) (groups, informative int) {
	answered, varied := informativeProblems(solutions)
	return answered, len(varied)
}

// informativeProblems returns how many problems the solutions answer and
// the set of those whose solutions' rewards are not all equal.
func informativeProblems(solutions []solution) (answered int, varied map[int]bool) {
	first := map[int]float64{}
	varied = map[int]bool{}
	for _, s := range solutions {
		r, seen := first[s.Problem]
		if !seen {
			first[s.Problem] = s.Reward
			continue
		}
		if r != s.Reward {
			varied[s.Problem] = true
		}
	}
	return len(first), varied
}
