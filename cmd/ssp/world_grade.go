package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"

	"github.com/ssp-project/ssp/internal/world"
	"github.com/ssp-project/ssp/internal/worldgrade"
)

func init() {
	register(command{name: "world grade", summary: "check a self-play run's proposed questions against the world's facts: how many of the valid ones are right", run: runWorldGrade})
}

// runWorldGrade grades, against the generated world's graph, every
// question a run's proposer wrote. Self-play itself never sees these
// labels; the grade says how well its label-free checks did: how many
// valid questions (those that passed the filters and the RAG check) the
// world says are wrong, their target not what the question asks for, and
// how many right ones the checks turned away.
func runWorldGrade(ctx context.Context, args []string) error {
	fs := newFlags("world grade", "--world DIR RUN_DIR...")
	worldDir := fs.String("world", "", "world directory the runs played on (written by ssp world gen; its world.json regenerates the facts)")
	parts := fs.Int("parts", 4, "split each run's steps into this many equal parts, one line each")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *worldDir == "":
		return fmt.Errorf("%w: --world is required", errUsage)
	case fs.NArg() == 0:
		return fmt.Errorf("%w: name at least one run directory (with rollouts/step-N.jsonl)", errUsage)
	case *parts < 1:
		return fmt.Errorf("%w: --parts must be at least 1, got %d", errUsage, *parts)
	}
	g, err := world.Load(*worldDir)
	if err != nil {
		return fmt.Errorf("--world %s: %w", *worldDir, err)
	}
	for _, run := range fs.Args() {
		graded, err := worldgrade.Read(g, run)
		if err != nil {
			return err
		}
		writeGrades(os.Stdout, run, graded, *parts)
	}
	return nil
}

// writeGrades prints one line per part of the run's steps, then the right
// questions by their number of links, then the solver rollouts by the
// grade of their question.
func writeGrades(w io.Writer, name string, run worldgrade.Run, parts int) {
	qs := run.Questions
	fmt.Fprintf(w, "%s: %d questions written\n", name, len(qs))
	if len(qs) > 0 {
		first, last := qs[0].Step, qs[len(qs)-1].Step
		span := last - first + 1
		parts = min(parts, span)
		fmt.Fprintf(w, "%-9s %7s %7s %6s %6s %6s %9s %8s %8s %8s\n", "steps", "written", "valid", "right", "wrong", "other", "precision", "hops", "rejected", "rejected")
		fmt.Fprintf(w, "%-9s %7s %7s %6s %6s %6s %9s %8s %8s %8s\n", "", "", "", "", "", "", "", "(right)", "right", "wrong")
		for p := range parts {
			lo, hi := first+p*span/parts, first+(p+1)*span/parts-1
			s := run.Summarize(lo, hi)
			precision, hops := "-", "-"
			if v := s.Precision(); !math.IsNaN(v) {
				precision = fmt.Sprintf("%.0f %%", 100*v)
			}
			if v := s.MeanRightHops(); !math.IsNaN(v) {
				hops = fmt.Sprintf("%.2f", v)
			}
			fmt.Fprintf(w, "%-9s %7d %7d %6d %6d %6d %9s %8s %8d %8d\n", fmt.Sprintf("%d-%d", lo, hi), s.Written, s.Valid,
				s.ValidBy[world.Right], s.ValidBy[world.Wrong], s.ValidBy[world.Other], precision, hops,
				s.RejectedBy[world.Right], s.RejectedBy[world.Wrong])
		}
	}
	all := run.Summarize(math.MinInt, math.MaxInt)
	fmt.Fprint(w, "right questions written (valid or not), by links:")
	if len(all.RightWrittenByHops) == 0 {
		fmt.Fprint(w, " none")
	}
	for _, k := range slices.Sorted(maps.Keys(all.RightWrittenByHops)) {
		fmt.Fprintf(w, " %d: %d", k, all.RightWrittenByHops[k])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "valid questions whose searches were grounded %s; the others %s\n", byGrade(all.GroundedValidBy), byGrade(all.UngroundedValidBy()))
	fmt.Fprintf(w, "RAG check passed right questions %s, wrong %s, other %s\n", passed(all, world.Right), passed(all, world.Wrong), passed(all, world.Other))
	fmt.Fprintf(w, "solver rollouts (rewarded) on right questions %d (%d), wrong %d (%d), other %d (%d)\n",
		run.SolverRollouts[world.Right], run.Rewarded[world.Right], run.SolverRollouts[world.Wrong], run.Rewarded[world.Wrong],
		run.SolverRollouts[world.Other], run.Rewarded[world.Other])
}

// byGrade is "right R, wrong W, other O (P % right)", P the share of the
// gradable (right or wrong) questions that are right.
func byGrade(n [3]int) string {
	share := "-"
	if v := worldgrade.RightShare(n); !math.IsNaN(v) {
		share = fmt.Sprintf("%.0f %%", 100*v)
	}
	return fmt.Sprintf("right %d, wrong %d, other %d (%s right)", n[world.Right], n[world.Wrong], n[world.Other], share)
}

// passed is "P of C (R %)": of the questions of grade g the RAG check
// answered, how many it passed.
func passed(s worldgrade.Summary, g world.Grade) string {
	rate, p, c := s.RAGPassRate(g)
	if c == 0 {
		return "0 of 0"
	}
	return fmt.Sprintf("%d of %d (%.0f %%)", p, c, 100*rate)
}
