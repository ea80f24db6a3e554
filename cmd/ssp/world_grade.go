package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/world"
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
		grades, solved, err := gradeRun(g, run)
		if err != nil {
			return err
		}
		writeGrades(os.Stdout, run, grades, solved, *parts)
	}
	return nil
}

// questionGrade is one question a proposer wrote.
type questionGrade struct {
	step  int
	valid bool // passed every check (the filters and, when on, the RAG check): the solver played it
	grade world.Grade
	hops  int // relations on the question's chain, when read
}

var stepFile = regexp.MustCompile(`^step-(\d+)\.jsonl$`)

// solverTally counts solver rollouts, and the rewarded ones, by the grade
// of the question they answered.
type solverTally struct{ rollouts, rewarded [3]int }

// gradeRun reads run/rollouts/step-N.jsonl in step order.
func gradeRun(g *world.Graph, run string) ([]questionGrade, solverTally, error) {
	var solved solverTally
	dir := filepath.Join(run, "rollouts")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, solved, fmt.Errorf("%s: %w (a run directory of ssp train)", run, err)
	}
	type file struct {
		step int
		path string
	}
	var files []file
	for _, e := range entries {
		if m := stepFile.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			files = append(files, file{n, filepath.Join(dir, e.Name())})
		}
	}
	if len(files) == 0 {
		return nil, solved, fmt.Errorf("%s: no step-N.jsonl files", dir)
	}
	slices.SortFunc(files, func(a, b file) int { return a.step - b.step })
	var grades []questionGrade
	for _, f := range files {
		gs, err := gradeFile(g, f.path, f.step, &solved)
		if err != nil {
			return nil, solved, err
		}
		grades = append(grades, gs...)
	}
	return grades, solved, nil
}

func gradeFile(g *world.Graph, path string, step int, solved *solverTally) ([]questionGrade, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var grades []questionGrade
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var r selfplay.RolloutRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if r.Role == "solver" {
			grade, _ := g.Grade(r.Question, r.Answers)
			solved.rollouts[grade]++
			if r.Reward > 0 {
				solved.rewarded[grade]++
			}
			continue
		}
		if r.Role != "proposer" {
			continue
		}
		if r.Question == "" {
			continue // no question written
		}
		qg := questionGrade{step: step, valid: r.Valid != nil && *r.Valid}
		qg.grade, qg.hops = g.Grade(r.Question, r.Answers)
		grades = append(grades, qg)
	}
	return grades, sc.Err()
}

// writeGrades prints one line per part of the run's steps, then the right
// questions by their number of links, then the solver rollouts by the
// grade of their question.
func writeGrades(w io.Writer, run string, grades []questionGrade, solved solverTally, parts int) {
	fmt.Fprintf(w, "%s: %d questions written\n", run, len(grades))
	defer func() {
		byLinks := map[int]int{}
		for _, qg := range grades {
			if qg.grade == world.Right {
				byLinks[qg.hops]++
			}
		}
		links := slices.Sorted(maps.Keys(byLinks))
		fmt.Fprint(w, "right questions written (valid or not), by links:")
		if len(links) == 0 {
			fmt.Fprint(w, " none")
		}
		for _, k := range links {
			fmt.Fprintf(w, " %d: %d", k, byLinks[k])
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "solver rollouts (rewarded) on right questions %d (%d), wrong %d (%d), other %d (%d)\n",
			solved.rollouts[world.Right], solved.rewarded[world.Right], solved.rollouts[world.Wrong], solved.rewarded[world.Wrong],
			solved.rollouts[world.Other], solved.rewarded[world.Other])
	}()
	if len(grades) == 0 {
		return
	}
	first, last := grades[0].step, grades[len(grades)-1].step
	span := last - first + 1
	parts = min(parts, span)
	fmt.Fprintf(w, "%-9s %7s %7s %6s %6s %6s %9s %8s %8s %8s\n", "steps", "written", "valid", "right", "wrong", "other", "precision", "hops", "rejected", "rejected")
	fmt.Fprintf(w, "%-9s %7s %7s %6s %6s %6s %9s %8s %8s %8s\n", "", "", "", "", "", "", "", "(right)", "right", "wrong")
	for p := range parts {
		lo, hi := first+p*span/parts, first+(p+1)*span/parts-1
		var written, valid, rejRight, rejWrong, hopSum int
		count := map[world.Grade]int{}
		for _, qg := range grades {
			if qg.step < lo || qg.step > hi {
				continue
			}
			written++
			switch {
			case qg.valid:
				valid++
				count[qg.grade]++
				if qg.grade == world.Right {
					hopSum += qg.hops
				}
			case qg.grade == world.Right:
				rejRight++
			case qg.grade == world.Wrong:
				rejWrong++
			}
		}
		precision, hops := "-", "-"
		if graded := count[world.Right] + count[world.Wrong]; graded > 0 {
			precision = fmt.Sprintf("%.0f %%", 100*float64(count[world.Right])/float64(graded))
		}
		if count[world.Right] > 0 {
			hops = fmt.Sprintf("%.2f", float64(hopSum)/float64(count[world.Right]))
		}
		fmt.Fprintf(w, "%-9s %7d %7d %6d %6d %6d %9s %8s %8d %8d\n", fmt.Sprintf("%d-%d", lo, hi), written, valid,
			count[world.Right], count[world.Wrong], count[world.Other], precision, hops, rejRight, rejWrong)
	}
}
