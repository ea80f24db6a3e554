package selfplay

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dirModel writes a fake Hugging Face checkpoint.
type dirModel struct{ saves int }

func (m *dirModel) Save(dir string) error {
	m.saves++
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"llama"}`), 0o644)
}

type dirOptimizer struct{}

func (dirOptimizer) SaveState(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "state.bin"), []byte{1, 2, 3}, 0o644)
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		rows = append(rows, row)
	}
	return rows
}

func TestRunnerWritesRunDirectoryAndResumes(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Run.SaveEvery = 2
	g, _, _, _ := testGame(cfg)
	var console strings.Builder
	g.Progress = &Progress{W: &console, TotalSteps: 3}
	rd, err := OpenRunDir(dir, cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := &dirModel{}
	r := &Runner{Game: g, Dir: rd, Model: m, Optimizer: dirOptimizer{}}
	if err := r.Run(context.Background(), 1, 3); err != nil {
		t.Fatal(err)
	}
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}

	rows := readLines(t, filepath.Join(dir, "metrics.jsonl"))
	if len(rows) != 3 {
		t.Fatalf("metrics.jsonl has %d lines", len(rows))
	}
	for _, key := range []string{"step", "proposer_reward", "solver_reward", "valid_question_rate", "rag_pass_rate",
		"solver_accuracy", "policy_loss", "kl", "entropy", "tokens_generated", "step_seconds", "time/propose"} {
		if _, ok := rows[2][key]; !ok {
			t.Errorf("metrics line lacks %q", key)
		}
	}
	if rows[2]["step"] != 3.0 {
		t.Errorf("last step = %v", rows[2]["step"])
	}
	if recs := readLines(t, filepath.Join(dir, "rollouts", "step-2.jsonl")); len(recs) == 0 || recs[0]["role"] != "proposer" {
		t.Fatalf("rollouts: %v", recs)
	}
	// Checkpoints at step 2 (save_every) and 3 (last).
	path, step, err := LatestCheckpoint(dir)
	if err != nil || step != 3 || m.saves != 2 {
		t.Fatalf("LatestCheckpoint = %q, %d, %v; saves %d", path, step, err, m.saves)
	}
	for _, f := range []string{"config.json", "optimizer/state.bin", "pool.json", "trainer_state.json"} {
		if _, err := os.Stat(filepath.Join(path, f)); err != nil {
			t.Errorf("checkpoint lacks %s: %v", f, err)
		}
	}
	pool, err := LoadCheckpointPool(path)
	if err != nil || len(pool.Problems) == 0 {
		t.Fatalf("pool: %+v, %v", pool, err)
	}
	t.Log("console:\n" + console.String())
	if !strings.Contains(console.String(), "step 3/3  proposing") || !strings.Contains(console.String(), "valid 0.25") {
		t.Errorf("console output:\n%s", console.String())
	}
	if events, _ := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*")); len(events) != 1 {
		t.Errorf("event files: %v", events)
	}

	// A fresh run refuses the directory.
	if _, err := OpenRunDir(dir, cfg, 0); err == nil || !strings.Contains(err.Error(), "already holds checkpoints") || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("fresh run over checkpoints: %v", err)
	}

	// A crash leaves a torn line and an incomplete checkpoint directory;
	// resuming from step 2 keeps metrics of steps 1-2 only.
	f, _ := os.OpenFile(filepath.Join(dir, "metrics.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":4,"proposer_rew`)
	f.Close()
	os.MkdirAll(filepath.Join(dir, "checkpoints", "step-9"), 0o755) // no trainer_state.json
	if _, step, _ := LatestCheckpoint(dir); step != 3 {
		t.Fatalf("incomplete checkpoint counted: latest %d", step)
	}
	rd, err = OpenRunDir(dir, cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if rows := readLines(t, filepath.Join(dir, "metrics.jsonl")); len(rows) != 2 || rows[1]["step"] != 2.0 {
		t.Fatalf("after resume: %v", rows)
	}
}

func TestTrimMetricsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	os.WriteFile(path, []byte("{\"step\":1}\n{\"step\":2}\n{\"st"), 0o644)
	if err := trimMetrics(path, 10); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if string(data) != "{\"step\":1}\n{\"step\":2}\n" {
		t.Fatalf("trimmed to %q", data)
	}
	if err := trimMetrics(filepath.Join(t.TempDir(), "none.jsonl"), 1); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}

func TestMetricsJSON(t *testing.T) {
	data, err := json.Marshal(Metrics{{"step", 3}, {"kl", 0.5}, {"bad", nan()}})
	if err != nil || string(data) != `{"step":3,"kl":0.5,"bad":null}` {
		t.Fatalf("%s, %v", data, err)
	}
}

func nan() float64 { var zero float64; return zero / zero }

// TestRunnerValidates: with run.eval_every the runner validates before the
// first step, every N steps and after the last, and the figures land on
// the step's metrics line.
func TestRunnerValidates(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Run.SaveEvery = 10
	cfg.Run.EvalEvery, cfg.Run.EvalData = 2, "held-out.jsonl"
	g, _, _, _ := testGame(cfg)
	rd, err := OpenRunDir(dir, cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	g.Progress = &Progress{W: &console, TotalSteps: 3}
	var validated []int
	r := &Runner{Game: g, Dir: rd, Model: &dirModel{}, Optimizer: dirOptimizer{},
		Validate: func(_ context.Context, step int) (Metrics, error) {
			validated = append(validated, step)
			return Metrics{{Name: "eval/em", Value: float64(step) / 10}, {Name: "eval/em_hops_1", Value: 0.5 + float64(step)/10},
				{Name: "eval/em_hops_2", Value: 0.25}}, nil
		}}
	if err := r.Run(context.Background(), 1, 3); err != nil {
		t.Fatal(err)
	}
	rd.Close()
	if fmt.Sprint(validated) != "[0 2 3]" {
		t.Errorf("validated at steps %v, want [0 2 3]", validated)
	}
	// Each validation gets a line after its step's line, and the run ends
	// with the first and last validation side by side (mutations seen to
	// fail: no Validation call for step 0; Summary comparing the last
	// validation with itself).
	out := console.String()
	for _, want := range []string{"validation at step 0  EM 0.0  1-hop 50.0  2-hop 25.0",
		"validation at step 2  EM 20.0  1-hop 70.0  2-hop 25.0",
		"held-out EM: 0.0 at step 0, 30.0 at step 3 (+30.0); 1-hop 50.0 → 80.0, 2-hop 25.0 → 25.0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "step 2/3  proposer"), strings.Index(out, "validation at step 2"); i < 0 || j < i {
		t.Errorf("the validation of step 2 is not after its step line:\n%s", out)
	}
	rows := readLines(t, filepath.Join(dir, "metrics.jsonl"))
	if _, ok := rows[0]["eval/em"]; ok {
		t.Error("step 1 has validation metrics")
	}
	if rows[1]["eval/em"] != 0.2 || rows[2]["eval/em"] != 0.3 {
		t.Errorf("eval/em on steps 2 and 3: %v, %v", rows[1]["eval/em"], rows[2]["eval/em"])
	}
	// Without run.eval_first the starting policy is not validated.
	cfg.Run.EvalFirst = false
	g2, _, _, _ := testGame(cfg)
	rd2, err := OpenRunDir(t.TempDir(), cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	validated = nil
	r.Game, r.Dir = g2, rd2
	if err := r.Run(context.Background(), 1, 2); err != nil {
		t.Fatal(err)
	}
	rd2.Close()
	if fmt.Sprint(validated) != "[2]" {
		t.Errorf("without eval_first: validated at %v, want [2]", validated)
	}
	cfg.Run.EvalData = ""
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "run.eval_data") {
		t.Errorf("eval_every without eval_data: %v", err)
	}
}

// TestReadRollouts reads back what WriteRollouts wrote, in step order
// (step 10 after step 2, not before it as its name sorts), and names the
// file and line of a record it cannot read. Mutation: visiting the files
// in name order fails it.
func TestReadRollouts(t *testing.T) {
	dir := t.TempDir()
	if err := ReadRollouts(dir, func(int, RolloutRecord) error { return nil }); err == nil {
		t.Error("a directory without rollouts/ was accepted")
	}
	if err := os.MkdirAll(filepath.Join(dir, "rollouts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, step := range []int{10, 2} {
		recs := []RolloutRecord{{Step: step, Role: "proposer"}, {Step: step, Role: "solver", Reward: float64(step)}}
		if err := WriteRollouts(dir, step, recs); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := ReadRollouts(dir, func(step int, r RolloutRecord) error {
		got = append(got, fmt.Sprintf("%d:%s:%g", step, r.Role, r.Reward))
		return nil
	})
	if want := "2:proposer:0 2:solver:2 10:proposer:0 10:solver:10"; err != nil || strings.Join(got, " ") != want {
		t.Errorf("read %q, %v; want %q", strings.Join(got, " "), err, want)
	}
	bad := filepath.Join(dir, "rollouts", "step-3.jsonl")
	if err := os.WriteFile(bad, []byte("{\"role\":\"solver\"}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = ReadRollouts(dir, func(int, RolloutRecord) error { return nil })
	if err == nil || !strings.Contains(err.Error(), bad+":2") {
		t.Errorf("a bad line: err %v, want one naming %s:2", err, bad)
	}
}
