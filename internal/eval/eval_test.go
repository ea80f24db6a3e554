package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/judge"
)

var examples = []dataset.Example{
	{ID: "1", Question: "q1", GoldenAnswers: []string{"Paris"}, DataSource: "nq", Hops: 1},
	{ID: "2", Question: "q2", GoldenAnswers: []string{"Homer"}, DataSource: "nq", Hops: 2},
	{ID: "3", Question: "q3", GoldenAnswers: []string{"blue whale"}, DataSource: "hotpotqa", Hops: 2},
	{ID: "4", Question: "q4", GoldenAnswers: []string{"x"}, DataSource: "hotpotqa", Hops: 2},
}

func TestRunFromPredictions(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "preds.jsonl")
	os.WriteFile(pf, []byte(`{"id":"1","prediction":"the Paris","turns":2,"searches":1,"tokens":100}
{"id":"2","response":"<answer>x</answer> then <answer>Homer</answer>","turns":4,"searches":3,"tokens":300}
{"id":"3","prediction":"the blue whale shark","finish_reason":"length"}
{"id":"4","response":"I give up","finish_reason":"turn_limit"}
`), 0o644)
	preds, err := ReadPredictions(pf)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	var progress bytes.Buffer
	m, err := Run(context.Background(), Config{OutDir: out, BatchSize: 3, Progress: NewProgress(&progress)}, examples, PredictionSolver(preds))
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	nq, hq := m.ByDataset["nq"], m.ByDataset["hotpotqa"]
	if nq.N != 2 || !near(nq.EM, 1) || !near(nq.AvgTurns, 3) || !near(nq.AvgTokens, 200) {
		t.Errorf("nq = %+v", nq)
	}
	// "the blue whale shark" vs "blue whale": no EM, SubEM, F1 = 2*(2/3*1)/(2/3+1) = 0.8.
	if hq.N != 2 || hq.EM != 0 || !near(hq.SubEM, 0.5) || !near(hq.F1, 0.4) {
		t.Errorf("hotpotqa = %+v", hq)
	}
	if hq.Failures[FinishLength] != 1 || hq.Failures[FinishTurnLimit] != 1 || m.Overall.Failures[FinishNoAnswer] != 0 {
		t.Errorf("failures = %+v", hq.Failures)
	}
	if h2 := m.ByHops["2"]; h2.N != 3 || !near(h2.EM, 1.0/3) {
		t.Errorf("hops 2 = %+v", h2)
	}
	for _, f := range []string{"trajectories.jsonl", "metrics.json", "report.md", "report.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	html, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !bytes.Contains(html, []byte("<svg")) || !bytes.Contains(html, []byte("By hops")) {
		t.Error("report.html lacks charts or hop table")
	}
	if !strings.Contains(progress.String(), "4/4 examples") || !strings.Contains(progress.String(), "ETA") {
		t.Errorf("progress = %q", progress.String())
	}
	back, err := ReadMetrics(out)
	if err != nil || back.Overall.N != 4 {
		t.Fatalf("ReadMetrics: %+v, %v", back, err)
	}
	var cmp bytes.Buffer
	Compare(&cmp, "a", "b", back, m)
	if !strings.Contains(cmp.String(), "+0.0") || !strings.Contains(cmp.String(), "hotpotqa") {
		t.Errorf("compare = %s", cmp.String())
	}
	if _, err := Run(context.Background(), Config{OutDir: out}, examples, PredictionSolver(preds)); err == nil {
		t.Error("existing run directory overwritten")
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	fail := func(ctx context.Context, b []dataset.Example) ([]Trajectory, error) { return nil, errors.New("boom") }
	if _, err := Run(context.Background(), Config{OutDir: filepath.Join(dir, "r1")}, examples, fail); err == nil {
		t.Fatal("solver error swallowed")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed run left files: %v", entries)
	}
	if _, err := Run(context.Background(), Config{OutDir: filepath.Join(dir, "r2")}, examples, PredictionSolver(map[string]Trajectory{})); err == nil || !strings.Contains(err.Error(), `"1"`) {
		t.Fatalf("missing prediction: %v", err)
	}
}

func TestReadPredictionsErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"noid":   `{"prediction":"x"}`,
		"nopred": `{"id":"1"}`,
		"reason": `{"id":"1","prediction":"x","finish_reason":"bored"}`,
		"dup":    "{\"id\":\"1\",\"prediction\":\"x\"}\n{\"id\":\"1\",\"prediction\":\"y\"}",
		"json":   `{"id":`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := ReadPredictions(p); err == nil || !strings.Contains(err.Error(), p+":") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestRunWithJudge(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write([]byte(`{"choices":[{"message":{"role":"assistant","content":"Correct"}}]}`))
	}))
	defer srv.Close()
	j, err := judge.New(judge.Config{BaseURL: srv.URL, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	preds := map[string]Trajectory{
		"1": {ID: "1", Prediction: "Paris", FinishReason: FinishAnswer},          // EM: no request
		"2": {ID: "2", Prediction: "the poet Homer", FinishReason: FinishAnswer}, // judged correct
		"3": {ID: "3", Prediction: "", FinishReason: FinishNoAnswer},             // no answer: not judged
		"4": {ID: "4", Prediction: "y", FinishReason: FinishAnswer},              // judged (stub says correct)
	}
	m, err := Run(context.Background(), Config{OutDir: filepath.Join(t.TempDir(), "run"), Judge: j}, examples, PredictionSolver(preds))
	if err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 2 || m.Overall.JudgeAcc == nil || *m.Overall.JudgeAcc != 0.75 || m.Judge.Requests != 2 {
		t.Fatalf("requests=%d judge acc=%v counters=%+v", requests.Load(), m.Overall.JudgeAcc, m.Judge)
	}
}

// TestRunResume interrupts a run after its first batch, checks what it
// kept, and resumes it: only the missing examples are solved, a line cut
// short by the crash is dropped, and the result equals an uninterrupted run.
func TestRunResume(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "runs", "r")
	answers := map[string]string{"1": "Paris", "2": "nope", "3": "blue whale", "4": "x"}
	var solved []string
	solver := func(failAfter int) SolveFunc {
		calls := 0
		return func(ctx context.Context, b []dataset.Example) ([]Trajectory, error) {
			calls++
			if calls > failAfter {
				return nil, context.Canceled
			}
			var ts []Trajectory
			for _, e := range b {
				solved = append(solved, e.ID)
				ts = append(ts, Trajectory{ID: e.ID, Prediction: answers[e.ID], FinishReason: FinishAnswer})
			}
			return ts, nil
		}
	}
	prov := &Provenance{Model: "m1", Data: []string{"d.jsonl"}}
	_, err := Run(context.Background(), Config{OutDir: out, BatchSize: 2, Provenance: prov}, examples, solver(1))
	if err == nil || !strings.Contains(err.Error(), "--resume") || !strings.Contains(err.Error(), "2 of 4") {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("interrupted run wrote the run directory")
	}
	// A crash in the middle of a write leaves half a line.
	f, _ := os.OpenFile(filepath.Join(PartialDir(out), "trajectories.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"id":"3","predic`)
	f.Close()
	if _, err := Run(context.Background(), Config{OutDir: out, BatchSize: 2, Provenance: prov}, examples, solver(9)); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("rerun without --resume: %v", err)
	}
	other := &Provenance{Model: "m1", Data: []string{"d.jsonl"}}
	if _, err := Run(context.Background(), Config{OutDir: out, BatchSize: 2, Provenance: other, Resume: true}, examples[:3], solver(9)); err == nil || !strings.Contains(err.Error(), "other examples") {
		t.Fatalf("resume with other data: %v", err)
	}
	if _, err := Run(context.Background(), Config{OutDir: out, BatchSize: 2, Provenance: &Provenance{Model: "m2"}, Resume: true}, examples, solver(9)); err == nil || !strings.Contains(err.Error(), "m1") {
		t.Fatalf("resume with another model: %v", err)
	}
	solved = nil
	var progress bytes.Buffer
	m, err := Run(context.Background(), Config{OutDir: out, BatchSize: 2, Provenance: prov, Resume: true, Progress: NewProgress(&progress)}, examples, solver(9))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(solved, ",") != "3,4" {
		t.Errorf("resumed run solved %v, want only 3,4", solved)
	}
	if !strings.Contains(progress.String(), "2/4 examples already done") || !strings.Contains(progress.String(), "4/4 examples") {
		t.Errorf("progress = %q", progress.String())
	}
	if _, err := os.Stat(PartialDir(out)); err == nil {
		t.Error("partial results left after the run completed")
	}
	if m.Examples != 4 || m.Overall.EM != 0.75 {
		t.Errorf("resumed metrics: %d examples, EM %v; want 4, 0.75", m.Examples, m.Overall.EM)
	}
	if m.Provenance == nil || m.Provenance.Model != "m1" || m.Provenance.DataDigest != DigestExamples(examples) || m.Provenance.Examples != 4 {
		t.Errorf("provenance = %+v", m.Provenance)
	}
	data, _ := os.ReadFile(filepath.Join(out, "trajectories.jsonl"))
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "1,2,3,4" {
		t.Errorf("trajectories.jsonl ids %v, want the examples' order", ids)
	}
	back, err := ReadMetrics(out)
	if err != nil || back.Provenance == nil || back.Provenance.DataDigest != m.Provenance.DataDigest {
		t.Errorf("metrics.json provenance: %+v %v", back, err)
	}
}

// TestProgressTokens checks the lines written while a batch generates and
// after it: tokens/s over the elapsed time and an ETA from finished examples.
func TestProgressTicksWithoutTokens(t *testing.T) {
	var buf syncBuffer
	p := NewProgress(&buf)
	p.Interval = 20 * time.Millisecond
	p.begin(3, 0)
	time.Sleep(200 * time.Millisecond)
	p.end()
	if !strings.Contains(buf.String(), "eval: 0/3 examples, no token yet") {
		t.Errorf("no line while no token came: %q", buf.String())
	}
	if got := rate(0.0166); got != "0.017" {
		t.Errorf("rate(0.0166) = %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the ticker's goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestProgressTokens(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	p.Interval = 5 * time.Second
	clock := time.Unix(0, 0)
	p.now = func() time.Time { return clock }
	p.begin(4, 0)
	defer p.end()
	p.mu.Lock()
	p.line(clock.Add(3 * time.Second)) // a tick before the first token
	p.last = clock
	p.mu.Unlock()
	clock = clock.Add(2 * time.Second)
	p.AddTokens(10) // before the interval: no line
	clock = clock.Add(8 * time.Second)
	p.AddTokens(10)
	clock = clock.Add(10 * time.Second)
	p.addExamples(1)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		"eval: 0/4 examples, no token yet (reading the prompts), elapsed 3s, ETA after the first batch",
		"eval: 0/4 examples, 20 tokens, 2 tokens/s, elapsed 10s, ETA after the first batch",
		"eval: 1/4 examples, 20 tokens, 1 tokens/s, elapsed 20s, 20s per example, ETA 1m0s",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress:\n%s\nwant:\n%s", buf.String(), strings.Join(want, "\n"))
	}
}

// TestComparable checks that runs over other questions are caught: by the
// data digest when both record it, else by the counts per dataset.
func TestComparable(t *testing.T) {
	run := func(digest string, n map[string]int) *Metrics {
		m := &Metrics{ByDataset: map[string]Group{}}
		for k, v := range n {
			m.ByDataset[k] = Group{N: v}
			m.Examples += v
		}
		if digest != "" {
			m.Provenance = &Provenance{DataDigest: digest}
		}
		return m
	}
	cases := []struct {
		name string
		a, b *Metrics
		ok   bool
	}{
		{"same digest", run("d1", map[string]int{"nq": 8}), run("d1", map[string]int{"nq": 8}), true},
		{"other digest, same counts", run("d1", map[string]int{"nq": 8}), run("d2", map[string]int{"nq": 8}), false},
		{"200 vs 8 without provenance", run("", map[string]int{"nq": 200}), run("", map[string]int{"nq": 8}), false},
		{"same total, other datasets", run("", map[string]int{"nq": 8}), run("", map[string]int{"hotpotqa": 8}), false},
		{"one without provenance, same counts", run("d1", map[string]int{"nq": 8}), run("", map[string]int{"nq": 8}), true},
	}
	for _, c := range cases {
		if err := Comparable(c.a, c.b); (err == nil) != c.ok {
			t.Errorf("%s: Comparable = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// TestReportExamplesAndProvenance checks the reports' example trajectories
// (best, worst answered, one per failure category) and provenance, and a
// chart of zeros that says so.
func TestReportExamplesAndProvenance(t *testing.T) {
	records := []Record{
		{Trajectory: Trajectory{ID: "good", Response: "<answer>Paris</answer>", Prediction: "Paris", FinishReason: FinishAnswer}, Question: "capital?", GoldenAnswers: []string{"Paris"}, EM: 1, F1: 1},
		{Trajectory: Trajectory{ID: "bad", Response: "<answer>Rome</answer>", Prediction: "Rome", FinishReason: FinishAnswer}, Question: "capital?", GoldenAnswers: []string{"Paris"}, F1: 0},
		{Trajectory: Trajectory{ID: "long", Response: strings.Repeat("é", 3000), FinishReason: FinishLength}, Question: "q", GoldenAnswers: []string{"x"}},
	}
	m := Summarize(records)
	m.Examples = len(records)
	m.Provenance = &Provenance{Model: "models/smollm2", Data: []string{"nq.jsonl"}, DataDigest: "sha256:abc", Settings: map[string]any{"max_turns": 3}}
	var md, page bytes.Buffer
	if err := WriteMarkdown(&md, "t", m, records); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&page, "t", m, records); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"report.md": md.String(), "report.html": page.String()} {
		for _, want := range []string{"Best answer", "good", "Worst answer", "bad", "Failure: length", "long", "models/smollm2", "sha256:abc", "max_turns", "more bytes)"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		if strings.Contains(s, "Failure: turn_limit") {
			t.Errorf("%s shows a failure category no trajectory has", name)
		}
		if !utf8.ValidString(s) {
			t.Errorf("%s cut a character in two", name)
		}
	}
	zero := Summarize(records[1:])
	zero.Examples = 2
	page.Reset()
	WriteHTML(&page, "t", zero, records[1:])
	if !strings.Contains(page.String(), "every value is 0") {
		t.Error("a chart of zeros does not say so")
	}
}
