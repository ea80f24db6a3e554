package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/world"
)

func init() {
	register(command{name: "world grade", summary: "check a self-play run's proposed questions against the world's facts: how many the RAG check let through were right", run: runWorldGrade})
}

// runWorldGrade grades, against the generated world's graph, every
// question a run's proposer wrote that reached the RAG check. Self-play
// itself never sees these labels; the grade says how well the label-free
// checks did: how many questions the RAG check passed that the world says
// are wrong (their target is not what the question asks for), and how
// many right ones it turned away.
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
		grades, err := gradeRun(g, run)
		if err != nil {
			return err
		}
		writeGrades(os.Stdout, run, grades, *parts)
	}
	return nil
}

// questionGrade is one proposed question that reached the RAG check.
type questionGrade struct {
	step      int
	passedRAG bool
	grade     world.Grade
	hops      int // relations on the question's chain, when read
}

var stepFile = regexp.MustCompile(`^step-(\d+)\.jsonl$`)

// gradeRun reads run/rollouts/step-N.jsonl in step order.
func gradeRun(g *world.Graph, run string) ([]questionGrade, error) {
	dir := filepath.Join(run, "rollouts")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (a run directory of ssp train)", run, err)
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
		return nil, fmt.Errorf("%s: no step-N.jsonl files", dir)
	}
	slices.SortFunc(files, func(a, b file) int { return a.step - b.step })
	var grades []questionGrade
	for _, f := range files {
		gs, err := gradeFile(g, f.path, f.step)
		if err != nil {
			return nil, err
		}
		grades = append(grades, gs...)
	}
	return grades, nil
}

func gradeFile(g *world.Graph, path string, step int) ([]questionGrade, error) {
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
		if r.Role != "proposer" {
			continue
		}
		checked, passed := false, false
		for _, v := range r.Verdicts {
			if v.Filter == selfplay.FilterRAG {
				checked, passed = true, v.Pass
			}
		}
		if !checked {
			continue
		}
		qg := questionGrade{step: step, passedRAG: passed}
		qg.grade, qg.hops = g.Grade(r.Question, r.Answers)
		grades = append(grades, qg)
	}
	return grades, sc.Err()
}

// writeGrades prints one line per part of the run's steps.
func writeGrades(w io.Writer, run string, grades []questionGrade, parts int) {
	fmt.Fprintf(w, "%s: %d questions reached the RAG check\n", run, len(grades))
	if len(grades) == 0 {
		return
	}
	first, last := grades[0].step, grades[len(grades)-1].step
	span := last - first + 1
	parts = min(parts, span)
	fmt.Fprintf(w, "%-9s %7s %7s %6s %6s %6s %9s %8s %8s %8s\n", "steps", "checked", "passed", "right", "wrong", "other", "precision", "hops", "rejected", "rejected")
	fmt.Fprintf(w, "%-9s %7s %7s %6s %6s %6s %9s %8s %8s %8s\n", "", "", "", "", "", "", "", "(right)", "right", "wrong")
	for p := range parts {
		lo, hi := first+p*span/parts, first+(p+1)*span/parts-1
		var checked, passed, rejRight, rejWrong, hopSum int
		count := map[world.Grade]int{}
		for _, qg := range grades {
			if qg.step < lo || qg.step > hi {
				continue
			}
			checked++
			switch {
			case qg.passedRAG:
				passed++
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
		fmt.Fprintf(w, "%-9s %7d %7d %6d %6d %6d %9s %8s %8d %8d\n", fmt.Sprintf("%d-%d", lo, hi), checked, passed,
			count[world.Right], count[world.Wrong], count[world.Other], precision, hops, rejRight, rejWrong)
	}
}
