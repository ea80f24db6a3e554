package eval

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

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
	m, err := Run(context.Background(), Config{OutDir: out, BatchSize: 3, Progress: &progress}, examples, PredictionSolver(preds))
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
