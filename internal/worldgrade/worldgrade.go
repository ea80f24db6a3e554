// Package worldgrade grades what a self-play run did against the facts of
// the generated world it played on: every question its proposer wrote, by
// whether its chain ends at the proposer's target (world.Graph.Grade), and
// every solver rollout by the grade of its question. Self-play never sees
// these grades; they measure how far its label-free checks can be trusted
// and how hard its valid questions really are (`ssp world grade`, the
// experiment report).
package worldgrade

import (
	"math"

	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/world"
)

// Question is one question a proposer wrote.
type Question struct {
	Step  int
	Valid bool // passed every check (the filters and, when on, the RAG check): the solver played it
	Grade world.Grade
	Hops  int // relations on the question's chain, when it is read
	// RAGChecked: the RAG check answered it; RAGPassed: and its answer was
	// the target. Graded, they say whether the check tells right questions
	// from wrong ones.
	RAGChecked, RAGPassed bool
	// Grounded: every search after the first used words the proposer had
	// been shown (selfplay.CheckGroundedSearches over the searches its
	// response shows), whether or not the run enforced it.
	Grounded bool
}

// Run is a run's graded questions, in step order, and its solver
// rollouts (and the rewarded ones) counted by the grade of their question.
type Run struct {
	Questions                []Question
	SolverRollouts, Rewarded [3]int // indexed by world.Grade
}

// Read grades dir/rollouts/step-N.jsonl of a `ssp train` run directory.
func Read(g *world.Graph, dir string) (Run, error) {
	var run Run
	err := selfplay.ReadRollouts(dir, func(step int, r selfplay.RolloutRecord) error {
		switch {
		case r.Role == "solver":
			grade, _ := g.Grade(r.Question, r.Answers)
			run.SolverRollouts[grade]++
			if r.Reward > 0 {
				run.Rewarded[grade]++
			}
		case r.Role == "proposer" && r.Question != "": // a proposal without a question is not graded
			q := Question{Step: step, Valid: r.Valid != nil && *r.Valid,
				Grounded: selfplay.CheckGroundedSearches(r.SearchCalls(), r.Answers).Pass}
			q.Grade, q.Hops = g.Grade(r.Question, r.Answers)
			for _, v := range r.Verdicts {
				if v.Filter == selfplay.FilterRAG {
					q.RAGChecked, q.RAGPassed = true, v.Pass
				}
			}
			run.Questions = append(run.Questions, q)
		}
		return nil
	})
	return run, err
}

// Summary counts the questions of a range of steps.
type Summary struct {
	Written, Valid     int
	ValidBy            [3]int // valid questions by world.Grade
	RejectedBy         [3]int // written, not valid, by world.Grade
	RAGCheckedBy       [3]int // written and answered by the RAG check, by world.Grade
	RAGPassedBy        [3]int // of those, the ones whose RAG answer was the target
	GroundedValidBy    [3]int // valid questions whose proposer's searches were grounded, by world.Grade
	RightHops          int    // relations of the right valid questions, summed
	RightWrittenByHops map[int]int
}

// Summarize counts the questions of steps lo..hi (inclusive).
func (run Run) Summarize(lo, hi int) Summary {
	s := Summary{RightWrittenByHops: map[int]int{}}
	for _, q := range run.Questions {
		if q.Step < lo || q.Step > hi {
			continue
		}
		s.Written++
		if q.RAGChecked {
			s.RAGCheckedBy[q.Grade]++
			if q.RAGPassed {
				s.RAGPassedBy[q.Grade]++
			}
		}
		if q.Grade == world.Right {
			s.RightWrittenByHops[q.Hops]++
		}
		if !q.Valid {
			s.RejectedBy[q.Grade]++
			continue
		}
		s.Valid++
		s.ValidBy[q.Grade]++
		if q.Grounded {
			s.GroundedValidBy[q.Grade]++
		}
		if q.Grade == world.Right {
			s.RightHops += q.Hops
		}
	}
	return s
}

// Add sums two summaries.
func (s Summary) Add(o Summary) Summary {
	out := Summary{Written: s.Written + o.Written, Valid: s.Valid + o.Valid, RightHops: s.RightHops + o.RightHops,
		RightWrittenByHops: map[int]int{}}
	for k := range 3 {
		out.ValidBy[k] = s.ValidBy[k] + o.ValidBy[k]
		out.RejectedBy[k] = s.RejectedBy[k] + o.RejectedBy[k]
		out.RAGCheckedBy[k] = s.RAGCheckedBy[k] + o.RAGCheckedBy[k]
		out.RAGPassedBy[k] = s.RAGPassedBy[k] + o.RAGPassedBy[k]
		out.GroundedValidBy[k] = s.GroundedValidBy[k] + o.GroundedValidBy[k]
	}
	for _, m := range []map[int]int{s.RightWrittenByHops, o.RightWrittenByHops} {
		for h, n := range m {
			out.RightWrittenByHops[h] += n
		}
	}
	return out
}

// Precision is right / (right + wrong) of the valid questions; NaN when
// none can be graded.
func (s Summary) Precision() float64 { return RightShare(s.ValidBy) }

// UngroundedValidBy counts, by world.Grade, the valid questions whose
// proposer's searches were not grounded.
func (s Summary) UngroundedValidBy() [3]int {
	var n [3]int
	for g := range n {
		n[g] = s.ValidBy[g] - s.GroundedValidBy[g]
	}
	return n
}

// RightShare is right / (right + wrong) of questions counted by
// world.Grade; NaN when none can be graded.
func RightShare(n [3]int) float64 {
	graded := n[world.Right] + n[world.Wrong]
	if graded == 0 {
		return math.NaN()
	}
	return float64(n[world.Right]) / float64(graded)
}

// RAGPassRate is the share of the questions of grade g that the RAG check
// answered that it passed, with the counts; NaN when it answered none (a
// run without the check).
func (s Summary) RAGPassRate(g world.Grade) (rate float64, passed, checked int) {
	passed, checked = s.RAGPassedBy[g], s.RAGCheckedBy[g]
	if checked == 0 {
		return math.NaN(), 0, 0
	}
	return float64(passed) / float64(checked), passed, checked
}

// MeanRightHops is the mean number of relations of the right valid
// questions; NaN when there is none.
func (s Summary) MeanRightHops() float64 {
	if s.ValidBy[world.Right] == 0 {
		return math.NaN()
	}
	return float64(s.RightHops) / float64(s.ValidBy[world.Right])
}
