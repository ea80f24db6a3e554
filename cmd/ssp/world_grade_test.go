package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/world"
	"github.com/ssp-project/ssp/internal/worldgrade"
)

// TestWorldGrade grades a hand-made run: over two steps, a right and a
// wrong valid question, one outside the world's wordings, a right one a
// check turned away, a wrong one a filter turned away and a proposal with
// no question. Mutations checked: swapping the "right" and "wrong" grades
// (in world.Graph.Grade), reading validity from the RAG verdict alone, and
// counting proposals without a question, all fail the expected table;
// counting every solver rollout as rewarded fails the solver line,
// counting wrong questions by links fails the links line, counting
// every RAG-checked question as passed fails the RAG line, and counting
// every valid question as grounded, or giving each search the whole
// response as its results (selfplay.RolloutRecord.SearchCalls), fails the
// grounded line.
func TestWorldGrade(t *testing.T) {
	dir := t.TempDir()
	worldDir := filepath.Join(dir, "world")
	if code := dispatch(context.Background(), []string{"world", "gen", "--out", worldDir, "--size", "tiny", "--seed", "3"}); code != 0 {
		t.Fatalf("world gen: exit %d", code)
	}
	g, err := world.Load(worldDir)
	if err != nil {
		t.Fatal(err)
	}
	bench := g.Derive().Benchmark
	right := bench[1] // 2 hops
	var wrongTarget string
	for _, q := range bench {
		if q.Answers[0] != right.Answers[0] {
			wrongTarget = q.Answers[0]
			break
		}
	}
	// The wrong question's proposer searched a name no result had shown
	// it; the right one's searched a name its first search showed.
	walked := func(first, second, shown string) (queries []string, response string) {
		return []string{first, second}, "<search> " + first + " </search>\n\n<information>Doc 1(Title: " + first + ") " +
			first + " is linked to " + shown + ".</information>\n\n<search> " + second + " </search>\n\n" +
			"<information>Doc 1(Title: " + second + ") nothing</information>\n\n<question> q </question>"
	}
	groundedQueries, groundedResponse := walked("Alpha Place", "Beta Person", "Beta Person")
	strayQueries, strayResponse := walked("Alpha Place", "Gamma Person", "Beta Person")
	yes, no := true, false
	rag := func(pass bool) []selfplay.Verdict {
		return []selfplay.Verdict{{Filter: selfplay.FilterExtract, Pass: true}, {Filter: selfplay.FilterRAG, Pass: pass}}
	}
	steps := map[int][]selfplay.RolloutRecord{
		1: {
			{Role: "proposer", Question: right.Question, Answers: right.Answers, Valid: &yes, Verdicts: rag(true),
				Queries: groundedQueries, Response: groundedResponse},
			{Role: "proposer", Question: right.Question, Answers: []string{wrongTarget}, Valid: &yes, Verdicts: rag(true),
				Queries: strayQueries, Response: strayResponse},
			{Role: "rag", Question: right.Question, Answers: right.Answers},
			{Role: "solver", Question: right.Question, Answers: right.Answers, Reward: 1},
			{Role: "solver", Question: right.Question, Answers: []string{wrongTarget}},
			{Role: "proposer", Answers: right.Answers, Valid: &no,
				Verdicts: []selfplay.Verdict{{Filter: selfplay.FilterExtract, Pass: false}}},
		},
		2: {
			{Role: "proposer", Question: "Which garden is the quietest?", Answers: right.Answers, Valid: &yes, Verdicts: rag(true)},
			{Role: "solver", Question: "Which garden is the quietest?", Answers: right.Answers, Reward: 0.25},
			// Turned away by the duplicate filter and the RAG check.
			{Role: "proposer", Question: right.Question, Answers: right.Answers, Valid: &no,
				Verdicts: []selfplay.Verdict{{Filter: selfplay.FilterDuplicate, Pass: false}, {Filter: selfplay.FilterRAG, Pass: false}}},
			{Role: "proposer", Question: right.Question, Answers: []string{wrongTarget}, Valid: &no,
				Verdicts: []selfplay.Verdict{{Filter: selfplay.FilterLength, Pass: false}}},
		},
	}
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(filepath.Join(run, "rollouts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for step, recs := range steps {
		for i := range recs {
			recs[i].Step = step
		}
		if err := selfplay.WriteRollouts(run, step, recs); err != nil {
			t.Fatal(err)
		}
	}
	graded, err := worldgrade.Read(g, run)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeGrades(&out, run, graded, 2)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := [][]string{
		{"1-1", "2", "2", "1", "1", "0", "50", "%", "2.00", "0", "0"},
		{"2-2", "3", "1", "0", "0", "1", "-", "-", "1", "1"},
	}
	if len(lines) != 9 || !strings.Contains(lines[0], "5 questions written") ||
		lines[5] != "right questions written (valid or not), by links: 2: 2" ||
		lines[6] != "valid questions whose searches were grounded right 1, wrong 0, other 1 (100 % right); the others right 0, wrong 1, other 0 (0 % right)" ||
		lines[7] != "RAG check passed right questions 1 of 2 (50 %), wrong 1 of 1 (100 %), other 1 of 1 (100 %)" ||
		lines[8] != "solver rollouts (rewarded) on right questions 1 (1), wrong 1 (0), other 1 (1)" {
		t.Fatalf("output:\n%s", out.String())
	}
	for k, w := range want {
		if got := strings.Fields(lines[3+k]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d: %q, want %q\n%s", k+1, got, w, out.String())
		}
	}

	// Bad input names what is wrong.
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"world", "grade", run}, 2},
		{[]string{"world", "grade", "--world", worldDir}, 2},
		{[]string{"world", "grade", "--world", filepath.Join(dir, "none"), run}, 1},
		{[]string{"world", "grade", "--world", worldDir, filepath.Join(dir, "none")}, 1},
		{[]string{"world", "grade", "--world", worldDir, "--parts", "0", run}, 2},
	} {
		if code := dispatch(context.Background(), c.args); code != c.code {
			t.Errorf("ssp %v: exit %d, want %d", c.args, code, c.code)
		}
	}
}
