package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/dataset"
)

// TestAsk asks the built-in agent a benchmark question: piped, the output
// is plain text with the question, each search with its shortened
// documents, and the answer `ssp eval` predicts for it; --color always
// adds ANSI colours.
//
// Mutations seen to fail it: colouring with --color auto when stdout is
// not a terminal (|| for && in useColor); printing no documents.
func TestAsk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a model")
	}
	t.Setenv("GOMLX_BACKEND", "go")
	t.Setenv("SSP_CACHE", t.TempDir())
	t.Setenv("NO_COLOR", "")
	ctx := context.Background()
	p, err := prepareBuiltin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := dataset.ReadJSONL(ctx, p.Benchmark)
	if err != nil {
		t.Fatal(err)
	}
	q := examples[1]
	opts := modelSolverOptions{}
	if err := modelEvalDefaults(ctx, &opts, &repeatedFlag{"unused"}, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	solve, closeFn, err := newModelSolver(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := solve(ctx, []dataset.Example{q})
	closeFn()
	if err != nil {
		t.Fatal(err)
	}

	out, code := captureStdout(t, func() int { return dispatch(ctx, []string{"ask", q.Question}) })
	if code != 0 {
		t.Fatalf("ssp ask exited %d: %s", code, out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("piped output has ANSI escapes: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "question: "+q.Question {
		t.Errorf("first line %q", lines[0])
	}
	searches := strings.Count(out, "\nsearch: ")
	if searches != want[0].Searches || want[0].Searches == 0 {
		t.Errorf("%d searches printed, eval made %d:\n%s", searches, want[0].Searches, out)
	}
	if !strings.Contains(out, "\n  [1] ") {
		t.Errorf("no document printed:\n%s", out)
	}
	if got := lines[len(lines)-2]; got != "answer: "+want[0].Prediction {
		t.Errorf("answer line %q, eval predicts %q", got, want[0].Prediction)
	}

	colored, code := captureStdout(t, func() int { return dispatch(ctx, []string{"ask", "--color", "always", q.Question}) })
	if code != 0 || !strings.Contains(colored, "\x1b[1m") || stripANSI(colored) != out {
		t.Errorf("--color always: exit %d, output %q", code, colored)
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestServeAndAskFlags checks that bad command lines are refused with
// exit status 2 and a message naming the flag, before any model loads.
//
// Mutation seen to fail it: accepting a model name ending in -agent.
func TestServeAndAskFlags(t *testing.T) {
	t.Setenv("SSP_CACHE", t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--max-batch", "0"}, "--max-batch"},
		{[]string{"serve", "--queue", "-1"}, "--queue"},
		{[]string{"serve", "--agent-max-batch", "-1"}, "--agent-max-batch"},
		{[]string{"serve", "--max-tokens", "0"}, "--max-tokens"},
		{[]string{"serve", "--max-body", "lots"}, "--max-body"},
		{[]string{"serve", "--model", "mine-agent=/x"}, "-agent"},
		{[]string{"serve", "--model", "a=/x", "--model", "a=/y"}, `two models named "a"`},
		{[]string{"serve", "--model", "bad name=/x"}, "--model"},
		{[]string{"serve", "extra"}, "unexpected argument"},
		{[]string{"ask"}, "question"},
		{[]string{"ask", "--color", "sometimes", "q"}, "--color"},
		{[]string{"ask", "--temperature", "3", "q"}, "--temperature"},
	} {
		out, code := captureStderr(t, func() int { return dispatch(context.Background(), tc.args) })
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("ssp %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, out, tc.want)
		}
	}
	if entries, _ := os.ReadDir(os.Getenv("SSP_CACHE")); len(entries) != 0 {
		t.Error("a refused command line prepared the built-in default")
	}
}

// TestParseModelSpec checks the --model forms of ssp serve.
func TestParseModelSpec(t *testing.T) {
	for _, tc := range []struct{ in, name, dir string }{
		{"builtin", "builtin", ""},
		{"base=builtin", "base", ""},
		{"runs/x/checkpoints/step-3", "step-3", "runs/x/checkpoints/step-3"},
		{"mine=runs/x/checkpoints/step-3/", "mine", "runs/x/checkpoints/step-3/"},
	} {
		got, err := parseModelSpec(tc.in)
		if err != nil || got.name != tc.name || got.dir != tc.dir {
			t.Errorf("%q: %+v, %v; want name %q dir %q", tc.in, got, err, tc.name, tc.dir)
		}
	}
	for _, bad := range []string{"x=", "=dir", "a b=dir", "x-agent=dir"} {
		if _, err := parseModelSpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
