package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/ssp-project/ssp/internal/world"
	"github.com/ssp-project/ssp/internal/worldgrade"
)

// renderWorldGrades grades the proposed questions of the self-play rows
// against the facts of the world the runs played on: how many valid
// questions were right, how far the checks can be trusted, and whether the
// right ones got longer from the first to the last third of the steps.
// worldDir "" looks for the world next to the first self-play run's seeds
// file; without one there is nothing to grade and the result is "".
func renderWorldGrades(rows []*row, worldDir string) (string, error) {
	if worldDir == "" {
		worldDir = worldFromProvenance(rows)
		if worldDir == "" {
			return "", nil
		}
	}
	g, err := world.Load(worldDir)
	if err != nil {
		return "", fmt.Errorf("--world %s: %w", worldDir, err)
	}
	var lines []string
	for _, r := range rows {
		if !r.ran() || !selfPlayRow(r) {
			continue
		}
		var all, first, last worldgrade.Summary
		var rightMulti, rightWritten int
		for _, ru := range r.Used {
			graded, err := worldgrade.Read(g, ru.Dir)
			if err != nil {
				return "", err
			}
			f, l := thirds(ru.Steps)
			if len(f) == 0 {
				continue
			}
			all = all.Add(graded.Summarize(math.MinInt, math.MaxInt))
			first = first.Add(graded.Summarize(int(f[0].Step), int(f[len(f)-1].Step)))
			last = last.Add(graded.Summarize(int(l[0].Step), int(l[len(l)-1].Step)))
		}
		for hops, n := range all.RightWrittenByHops {
			rightWritten += n
			if hops > 1 {
				rightMulti += n
			}
		}
		precision := "—"
		if p := all.Precision(); !math.IsNaN(p) {
			precision = fmt.Sprintf("%.0f %%", 100*p)
		}
		lines = append(lines, fmt.Sprintf("| `%s` | %d | %d | %d / %d / %d | %s | %s / %s | %s / %s | %s → %s | %d of %d |\n", r.Name, len(r.Used), all.Valid,
			all.ValidBy[world.Right], all.ValidBy[world.Wrong], all.ValidBy[world.Other], precision,
			rightShare(all.GroundedValidBy), rightShare(all.UngroundedValidBy()),
			ragPassed(all, world.Right), ragPassed(all, world.Wrong),
			nanDash(first.MeanRightHops(), fixed(2)), nanDash(last.MeanRightHops(), fixed(2)), rightMulti, rightWritten))
	}
	return captionedTable("The proposed questions by the world's facts (`internal/worldgrade`, as `ssp world grade`; self-play never sees "+
		"these labels), summed over seeds: valid questions whose chain ends at the proposer's target (right), ends elsewhere "+
		"or breaks (wrong), or that are not in the world's wordings (other); precision = right / (right + wrong); the same "+
		"precision of the valid questions whose proposer's searches were grounded (every search after the first used only "+
		"words of its target and of the results shown before it, as filter.grounded_searches asks) and of the others; of the "+
		"right and of the wrong questions written that the RAG check answered, the share it passed (a check that tells "+
		"them apart passes many more right ones); the "+
		"mean number of links of the right valid questions on the first and on the last third of the steps; and how many "+
		"of the right questions written, valid or not, have two or more links.",
		"| row | seeds | valid questions | right / wrong / other | precision | precision: grounded / other searches | RAG check passed: right / wrong | links of the right ones (first → last third) | right questions of 2+ links |\n"+
			"|---|---:|---:|---|---:|---|---|---|---:|\n", lines), nil
}

// worldFromProvenance is the directory of the first self-play run's seeds
// file when it holds world.json (a world written by ssp world gen, as the
// built-in default's is), else "".
func worldFromProvenance(rows []*row) string {
	for _, r := range rows {
		if !selfPlayRow(r) {
			continue
		}
		for _, ru := range r.Used {
			if ru.SeedsFile == "" {
				continue
			}
			dir := filepath.Dir(ru.SeedsFile)
			if _, err := os.Stat(filepath.Join(dir, world.Files.Info)); err == nil {
				return dir
			}
		}
	}
	return ""
}

// rightShare is "S % (R of G)": of the G gradable questions counted by
// grade in n, the R right; "—" when none can be graded.
func rightShare(n [3]int) string {
	share := worldgrade.RightShare(n)
	if math.IsNaN(share) {
		return "—"
	}
	return fmt.Sprintf("%.0f %% (%d of %d)", 100*share, n[world.Right], n[world.Right]+n[world.Wrong])
}

// ragPassed is "R % (P of C)": of the questions of grade g the RAG check
// answered, the share it passed; "—" when it answered none (a run without
// the check).
func ragPassed(s worldgrade.Summary, g world.Grade) string {
	rate, p, c := s.RAGPassRate(g)
	if c == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f %% (%d of %d)", 100*rate, p, c)
}
