package selfplay

import "math"

// SolverReward is 1 for a correct answer and 0 otherwise; a correct
// response that wrote more than maxTags <answer> tags earns 1/divisor, so
// that listing many guesses does not pay. SSP's reward (quark_score.py)
// uses maxTags 10: a model that mentions the tag while reasoning, or
// retracts one answer, keeps its reward.
func SolverReward(correct bool, answerTags, maxTags int, divisor float64) float64 {
	if !correct {
		return 0
	}
	if answerTags > maxTags {
		return 1 / divisor
	}
	return 1
}

// ProposerReward turns the solvers' success rate s on a valid question into
// the proposer's reward: "1-acc" pays 1-s (harder is better, SSP's choice),
// "intermediate" pays 4·s·(1-s) (peaks at s = 0.5, zero for questions
// nobody or everybody solves).
func ProposerReward(successRate float64, kind string) float64 {
	if kind == "intermediate" {
		return 4 * successRate * (1 - successRate)
	}
	return 1 - successRate
}

// GRPOAdvantages whitens rewards within groups: (r - mean) / (std + eps),
// with the unbiased standard deviation over the group. groups[i] names the
// group of rewards[i]. A group of one is scored as verl scores it (mean 0,
// std 1): its advantage is its reward, r / (1 + eps). That is what SSP's
// released proposer update does (proposer.n = 1 with the grpo estimator):
// no baseline, so with its format_penalty of 0 no proposal is pushed down.
func GRPOAdvantages(rewards []float64, groups []int, eps float64) []float64 {
	members := map[int][]int{}
	for i, g := range groups {
		members[g] = append(members[g], i)
	}
	adv := make([]float64, len(rewards))
	for _, idx := range members {
		if len(idx) == 1 {
			adv[idx[0]] = rewards[idx[0]] / (1 + eps)
			continue
		}
		vals := make([]float64, len(idx))
		for k, i := range idx {
			vals[k] = rewards[i]
		}
		mean, std := meanStd(vals)
		for _, i := range idx {
			adv[i] = (rewards[i] - mean) / (std + eps)
		}
	}
	return adv
}

// WhitenedAdvantages is REINFORCE++'s baseline: the reward whitened over
// the whole batch (one value per trajectory); a batch of one has nothing to
// be compared with and gets advantage 0.
func WhitenedAdvantages(rewards []float64, eps float64) []float64 {
	if len(rewards) < 2 {
		return make([]float64, len(rewards))
	}
	groups := make([]int, len(rewards))
	return GRPOAdvantages(rewards, groups, eps)
}

// meanStd returns the mean and the unbiased standard deviation (0 for
// fewer than two values).
func meanStd(vals []float64) (mean, std float64) {
	if len(vals) == 0 {
		return 0, 0
	}
	for _, v := range vals {
		mean += v
	}
	mean /= float64(len(vals))
	if len(vals) < 2 {
		return mean, 0
	}
	var ss float64
	for _, v := range vals {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(len(vals)-1))
}

// TokenAdvantages broadcasts a trajectory's advantage over its loss mask:
// the outcome reward sits on the last generated token and, with no
// discount and no critic, every generated token's return equals it.
func TokenAdvantages(advantage float64, mask []float32) []float32 {
	out := make([]float32, len(mask))
	for t, m := range mask {
		out[t] = float32(advantage) * m
	}
	return out
}
