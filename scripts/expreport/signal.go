package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ssp-project/ssp/internal/selfplay"
)

// signal counts what a run's updates could learn from, from its rollouts
// files: the solver's questions and those whose rollouts did not all earn
// the same reward (a group-relative advantage is zero on every rollout of
// the others), the rewarded solver rollouts and how many of them searched
// more than once, and the proposals trained with a nonzero advantage.
type signal struct {
	Questions, Informative  int
	Rewarded, RewardedMulti int
	ProposalsTrained        int
}

func (s signal) add(o signal) signal {
	return signal{s.Questions + o.Questions, s.Informative + o.Informative, s.Rewarded + o.Rewarded,
		s.RewardedMulti + o.RewardedMulti, s.ProposalsTrained + o.ProposalsTrained}
}

// readSignal reads dir/rollouts/step-N.jsonl of a run; ok is false when the
// run has no rollouts directory. A step's solver rollouts are written
// question by question, game.solver_rollouts each (from the run's
// config.yaml), which is how they are split into groups.
func readSignal(dir string) (s signal, ok bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, "rollouts")); errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return s, false, fmt.Errorf("%w (the run's settings, written by ssp train)", err)
	}
	var cfg struct {
		Game struct {
			SolverRollouts int   `yaml:"solver_rollouts"`
			TrainProposer  *bool `yaml:"train_proposer"`
		} `yaml:"game"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return s, false, fmt.Errorf("%s: %w", cfgPath, err)
	}
	groupSize := cfg.Game.SolverRollouts
	if groupSize < 1 {
		return s, false, fmt.Errorf("%s: game.solver_rollouts: want at least 1, got %d", cfgPath, groupSize)
	}
	trainProposer := cfg.Game.TrainProposer == nil || *cfg.Game.TrainProposer
	var group []float64 // rewards of the question being read
	groupStep := 0
	var leftOver error // the first step whose solver rollouts do not split into groups
	checkGroups := func() {
		if len(group) > 0 && leftOver == nil {
			leftOver = fmt.Errorf("%s: %d solver rollouts left over after groups of game.solver_rollouts %d (%s)",
				filepath.Join(dir, "rollouts", fmt.Sprintf("step-%d.jsonl", groupStep)), len(group), groupSize, cfgPath)
		}
		group = group[:0]
	}
	err = selfplay.ReadRollouts(dir, func(step int, r selfplay.RolloutRecord) error {
		if step != groupStep {
			checkGroups()
			groupStep = step
		}
		switch r.Role {
		case "proposer":
			if trainProposer && r.Advantage != 0 {
				s.ProposalsTrained++
			}
		case "solver":
			if r.Reward > 0 {
				s.Rewarded++
				if len(r.Queries) > 1 {
					s.RewardedMulti++
				}
			}
			group = append(group, r.Reward)
			if len(group) < groupSize {
				return nil
			}
			s.Questions++
			for _, x := range group[1:] {
				if x != group[0] {
					s.Informative++
					break
				}
			}
			group = group[:0]
		}
		return nil
	})
	if err == nil {
		checkGroups()
		err = leftOver
	}
	return s, err == nil, err
}

// renderSignal is the table of what each row's updates learnt from, summed
// over its seeds; "" when no run has rollouts.
func renderSignal(rows []*row) (string, error) {
	var lines []string
	for _, r := range rows {
		if !r.ran() {
			continue
		}
		var sum signal
		seeds := 0
		for _, ru := range r.Used {
			s, ok, err := readSignal(ru.Dir)
			if err != nil {
				return "", err
			}
			if ok {
				sum = sum.add(s)
				seeds++
			}
		}
		if seeds == 0 {
			continue
		}
		proposals := "—"
		if selfPlayRow(r) {
			proposals = fmt.Sprint(sum.ProposalsTrained)
		}
		lines = append(lines, fmt.Sprintf("| `%s` | %d | %d | %d (%s) | %d | %d (%s) | %s |\n", r.Name, seeds, sum.Questions,
			sum.Informative, percent(sum.Informative, sum.Questions), sum.Rewarded, sum.RewardedMulti,
			percent(sum.RewardedMulti, sum.Rewarded), proposals))
	}
	return captionedTable("What the updates learnt from (from each run's `rollouts/`, summed over seeds): the questions the solver played, "+
		"those whose rollouts did not all earn the same reward (a group-relative advantage is zero on every rollout of the others, "+
		"so only these teach the solver), the rewarded solver rollouts and those of them that searched more than once, "+
		"and the proposals the update trained with a nonzero advantage.",
		"| row | seeds | solver questions | with rewards that differ | rewarded solver rollouts | of them searching twice or more | proposals trained |\n"+
			"|---|---:|---:|---:|---:|---:|---:|\n", lines), nil
}

// captionedTable is a caption, a blank line, the table's header (with its
// separator line) and its rows; "" when there are no rows.
func captionedTable(caption, header string, rows []string) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(caption + "\n\n" + header)
	for _, r := range rows {
		b.WriteString(r)
	}
	return b.String()
}

func percent(n, of int) string {
	if of == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f %%", 100*float64(n)/float64(of))
}
