package selfplay

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
)

// Problem is a verified question kept for reuse.
type Problem struct {
	Question string   `json:"question"`
	Answers  []string `json:"answers"`
	// SuccessRate is the solvers' success rate the last time it was played.
	SuccessRate float64 `json:"success_rate"`
	AddedStep   int     `json:"added_step"`
	Uses        int     `json:"uses"`
}

// ProblemPool holds earlier valid questions. When a proposal fails, its
// slot in the solver batch is refilled from the pool so the batch keeps its
// shape (SSP's extraction_failure.strategy=reuse), preferring questions
// that still teach the solver something (pool.order).
type ProblemPool struct {
	Problems []Problem `json:"problems"`
}

// Add records a question after it was played; a question already in the
// pool (same normalised text) gets its success rate updated instead. When
// the pool exceeds maxSize, the easiest questions are dropped.
func (p *ProblemPool) Add(prob Problem, maxSize int) {
	key := normalizeText(prob.Question)
	for i := range p.Problems {
		if normalizeText(p.Problems[i].Question) == key {
			p.Problems[i].SuccessRate = prob.SuccessRate
			return
		}
	}
	p.Problems = append(p.Problems, prob)
	if len(p.Problems) > maxSize {
		p.sortHardestFirst()
		p.Problems = p.Problems[:maxSize]
	}
}

// Update sets the success rate of a reused question.
func (p *ProblemPool) Update(question string, successRate float64) {
	key := normalizeText(question)
	for i := range p.Problems {
		if normalizeText(p.Problems[i].Question) == key {
			p.Problems[i].SuccessRate = successRate
			return
		}
	}
}

// Pool orders (pool.order): which earlier questions refill failed slots.
const (
	// PoolOrderInformative prefers questions some but not all rollouts
	// solved (0 < s < 1), at random; the others follow, at random. A
	// question every rollout solved, or none did, gives its GRPO group
	// advantage 0, so replaying it trains nothing.
	PoolOrderInformative = "informative"
	// PoolOrderHardest takes the lowest success rate first, then the least
	// used, then the newest.
	PoolOrderHardest = "hardest"
	// PoolOrderRandom picks at random, as SSP's reuse strategy does.
	PoolOrderRandom = "random"
)

// Take returns n questions for refilling, among those whose last success
// rate is at most maxSuccessRate, in the given order (rng draws the random
// choices); it cycles when fewer than n qualify and returns nil when none
// does.
func (p *ProblemPool) Take(n int, maxSuccessRate float64, order string, rng *rand.Rand) []Problem {
	var idx []int
	for i, prob := range p.Problems {
		if prob.SuccessRate <= maxSuccessRate {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 || n <= 0 {
		return nil
	}
	shuffle := func(s []int) {
		rng.Shuffle(len(s), func(a, b int) { s[a], s[b] = s[b], s[a] })
	}
	switch order {
	case PoolOrderHardest:
		sort.SliceStable(idx, func(a, b int) bool {
			pa, pb := p.Problems[idx[a]], p.Problems[idx[b]]
			if pa.SuccessRate != pb.SuccessRate {
				return pa.SuccessRate < pb.SuccessRate
			}
			if pa.Uses != pb.Uses {
				return pa.Uses < pb.Uses
			}
			return pa.AddedStep > pb.AddedStep
		})
	case PoolOrderRandom:
		shuffle(idx)
	default: // PoolOrderInformative
		var informative, rest []int
		for _, i := range idx {
			if s := p.Problems[i].SuccessRate; s > 0 && s < 1 {
				informative = append(informative, i)
			} else {
				rest = append(rest, i)
			}
		}
		shuffle(informative)
		shuffle(rest)
		idx = append(informative, rest...)
	}
	out := make([]Problem, n)
	for k := range out {
		i := idx[k%len(idx)]
		p.Problems[i].Uses++
		out[k] = p.Problems[i]
	}
	return out
}

// Clear empties the pool, keeping the hardest keepRatio of it.
func (p *ProblemPool) Clear(keepRatio float64) {
	p.sortHardestFirst()
	keep := int(float64(len(p.Problems)) * keepRatio)
	p.Problems = p.Problems[:keep]
}

func (p *ProblemPool) sortHardestFirst() {
	sort.SliceStable(p.Problems, func(a, b int) bool {
		return p.Problems[a].SuccessRate < p.Problems[b].SuccessRate
	})
}

// Save writes the pool as JSON through a temporary file and a rename.
func (p *ProblemPool) Save(path string) error {
	data, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return fmt.Errorf("problem pool: %w", err)
	}
	return writeFileAtomic(path, data)
}

// LoadPool reads a pool written by Save.
func LoadPool(path string) (*ProblemPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("problem pool: %w", err)
	}
	var p ProblemPool
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("problem pool %s: %w", path, err)
	}
	return &p, nil
}
