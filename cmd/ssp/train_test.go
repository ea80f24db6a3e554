package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/safetensors"
	"github.com/ssp-project/ssp/internal/selfplay"
)

func TestTrainUsage(t *testing.T) {
	ctx := context.Background()
	t.Setenv("SSP_CACHE", t.TempDir())
	for _, args := range [][]string{
		{"--steps", "-1"},
		{"--game.batch_size", "0"},
		{"--no-such-flag"},
		{"extra"},
		{"--model", "m", "--steps", "-1"},
		{"--config", filepath.Join(t.TempDir(), "missing.yaml")},
	} {
		if err := runTrain(ctx, args); !errors.Is(err, errUsage) {
			t.Errorf("train %q: err = %v, want a usage error", args, err)
		}
	}
	// A usage error must not have built the default.
	if entries, _ := os.ReadDir(os.Getenv("SSP_CACHE")); len(entries) != 0 {
		t.Errorf("cache written on a usage error: %v", entries)
	}
}

// TestTrainBuiltinStep runs one self-play step of the built-in default and
// checks the run directory.
func TestTrainBuiltinStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a self-play step")
	}
	t.Setenv("GOMLX_BACKEND", "go")
	t.Setenv("SSP_CACHE", t.TempDir())
	out := filepath.Join(t.TempDir(), "run")
	// The default validates on the built-in benchmark before the first step
	// and after the last; two of its questions keep the test short.
	args := []string{"--steps", "1", "--out", out, "--game.batch_size", "2", "--agent.max_turns", "1", "--agent.max_tokens_per_turn", "8",
		"--run.eval_limit", "2"}
	console, code := captureStderr(t, func() int {
		if err := runTrain(context.Background(), args); err != nil {
			t.Error(err)
			return 1
		}
		return 0
	})
	if code != 0 {
		t.FailNow()
	}
	// The built-in run caps its heap (mutation seen to fail: no
	// limitBuiltinHeap call); other tests get the default back.
	if os.Getenv("GOMEMLIMIT") == "" {
		if got := debug.SetMemoryLimit(math.MaxInt64); got != builtinHeapLimit {
			t.Errorf("memory limit after the built-in run: %d, want %d", got, builtinHeapLimit)
		}
	}
	// Mutations seen to fail: builtin.TrainConfig without run.eval_every;
	// validation without an eval.Progress.
	for _, want := range []string{"validation at step 0  EM ", "validation at step 1  EM ", "\nheld-out EM: ", "\neval: 2/2 examples, "} {
		if !strings.Contains(console, want) {
			t.Errorf("the default run's console lacks %q:\n%s", want, console)
		}
	}
	for _, f := range []string{"metrics.jsonl", "config.yaml", "provenance.jsonl", "rollouts/step-1.jsonl", "checkpoints/step-1/model.safetensors", "checkpoints/step-1/tokenizer.json",
		"eval/step-0/metrics.json", "eval/step-1/metrics.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	var prov trainProvenance
	if data, err := os.ReadFile(filepath.Join(out, "provenance.jsonl")); err != nil || json.Unmarshal(data, &prov) != nil ||
		prov.Code == "" || prov.Command == "" || prov.Model == "" || prov.Index == "" || prov.Seeds == "" || prov.Backend != "go" {
		t.Errorf("provenance.jsonl: %+v (%v)", prov, err)
	}
	// metrics.jsonl: one line for step 1, every figure finite and in range.
	data, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("metrics.jsonl has %d lines, want 1", len(lines))
	}
	var row map[string]*float64
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
		t.Fatal(err)
	}
	get := func(k string) float64 {
		v, ok := row[k]
		if !ok || v == nil {
			t.Errorf("metrics: %s missing or not a number", k)
			return math.NaN()
		}
		return *v
	}
	if get("step") != 1 {
		t.Errorf("metrics: step %v, want 1", get("step"))
	}
	if v := get("proposer_reward"); !(v >= -1 && v <= 1) { // -1 for an invalid question
		t.Errorf("metrics: proposer_reward = %v, want [-1, 1]", v)
	}
	for _, k := range []string{"valid_question_rate", "solver_accuracy", "clip_fraction"} {
		if v := get(k); !(v >= 0 && v <= 1) {
			t.Errorf("metrics: %s = %v, want a fraction", k, v)
		}
	}
	for _, k := range []string{"tokens_generated", "tokens_trained", "step_seconds", "lr"} {
		if v := get(k); !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("metrics: %s = %v, want > 0", k, v)
		}
	}
	for _, k := range []string{"loss", "kl", "entropy", "grad_norm"} {
		if v := get(k); math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("metrics: %s = %v, want a finite number", k, v)
		}
	}
	// The checkpoint loads and gives the same log-probabilities twice, and
	// its trainer state names step 1.
	ckpt := filepath.Join(out, "checkpoints", "step-1")
	var state struct{ Step int }
	if data, err := os.ReadFile(filepath.Join(ckpt, "trainer_state.json")); err != nil || json.Unmarshal(data, &state) != nil || state.Step != 1 {
		t.Errorf("trainer_state.json: step %d (%v)", state.Step, err)
	}
	seq := [][]int32{{1, 2, 3, 4, 5, 6}}
	var first []float32
	for i := range 2 {
		m, err := model.Load(ckpt, model.LoadOptions{Backend: "go"})
		if err != nil {
			t.Fatal(err)
		}
		lp, err := m.TokenLogProbs(context.Background(), seq, nil)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(lp) != 1 || len(lp[0]) == 0 {
			t.Fatalf("log-probs %v", lp)
		}
		for _, v := range lp[0] {
			if !(v <= 0) {
				t.Fatalf("log-prob %v", v)
			}
		}
		if i == 0 {
			first = lp[0]
		} else if !slices.Equal(first, lp[0]) {
			t.Errorf("the checkpoint gives %v, then %v", first, lp[0])
		}
	}
	// A model without --index or --seeds trains on the built-in world.
	out2 := filepath.Join(t.TempDir(), "run2")
	args = []string{"--model", filepath.Join(out, "checkpoints", "step-1"), "--steps", "1", "--out", out2,
		"--game.batch_size", "2", "--agent.max_turns", "1", "--agent.max_tokens_per_turn", "8", "--agent.max_response_tokens", "64"}
	stderr, _ := captureStderr(t, func() int {
		if err := runTrain(context.Background(), args); err != nil {
			t.Error(err)
		}
		return 0
	})
	if !strings.Contains(stderr, "built-in world's index") || !strings.Contains(stderr, "built-in world's seeds") {
		t.Errorf("the defaults taken are not named on stderr:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(out2, "checkpoints", "step-1", "model.safetensors")); err != nil {
		t.Error(err)
	}

	// A judge (here one that answers every RAG check "nobody" and grades
	// every answer Incorrect) keeps its verdict cache in a new run's
	// directory, which it must not create before the run directory is made:
	// a file there first made the run refuse its own --out (mutation seen
	// to fail: opening the judge before selfplay.OpenRunDir).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"<answer> nobody </answer> Incorrect"}}]}`)
	}))
	defer srv.Close()
	out3 := filepath.Join(t.TempDir(), "run3")
	args = []string{"--model", filepath.Join(out, "checkpoints", "step-1"), "--steps", "1", "--out", out3,
		"--game.batch_size", "2", "--agent.max_turns", "1", "--agent.max_tokens_per_turn", "8", "--agent.max_response_tokens", "64",
		"--verify.rag_answerer", "judge", "--verify.judge_url", srv.URL, "--verify.judge_model", "m"}
	if err := runTrain(context.Background(), args); err != nil {
		t.Fatalf("train with a judge into a new directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out3, "checkpoints", "step-1", "model.safetensors")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(out3, "judge-cache.jsonl")); err != nil {
		t.Errorf("the judge's cache is not in the run directory: %v", err)
	}
}

// TestTrainLoRA starts a LoRA run of the built-in default from an adapter
// (--adapter), trains a step, resumes for a second, and uses the
// checkpoint's adapter as the model commands load one: the checkpoint holds
// a PEFT adapter (and merged/ with optim.lora.save_merged), the optimizer
// state holds the adapters' moments only, and model merge writes the
// merged model that --adapter computes. Mutations seen to fail: train
// saving the policy with Save instead of the adapter saver (no
// adapter_config.json); loadPolicy ignoring the checkpoint on resume (the
// resumed run starts from --adapter); eval not looking for the training run
// of --adapter (the run's settings are not taken).
func TestTrainLoRA(t *testing.T) {
	if testing.Short() {
		t.Skip("runs self-play steps")
	}
	t.Setenv("GOMLX_BACKEND", "go")
	t.Setenv("SSP_CACHE", t.TempDir())
	ctx := context.Background()
	paths, err := prepareBuiltin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := paths.Model
	// A start adapter whose B is not zero, so that it changes the logits.
	start := filepath.Join(t.TempDir(), "start")
	{
		m, err := model.Load(base, model.LoadOptions{Backend: "go"})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.AddLoRA(model.LoRAConfig{Rank: 4, Alpha: 8, Targets: []string{"q", "v", "down"}}, 1); err != nil {
			t.Fatal(err)
		}
		tr, err := model.NewTrainer(m, model.OptimizerConfig{LR: 1e-2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.LMStep(ctx, [][]int32{{1, 2, 3, 4, 5, 6, 7, 8}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := m.SaveAdapter(start); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	out := filepath.Join(t.TempDir(), "run")
	common := []string{"--out", out, "--game.batch_size", "2", "--agent.max_turns", "1", "--agent.max_tokens_per_turn", "8",
		"--adapter", start, "--optim.lora.save_merged", "true"}
	if err := runTrain(ctx, append([]string{"--steps", "1"}, common...)); err != nil {
		t.Fatal(err)
	}
	ckpt1 := filepath.Join(out, "checkpoints", "step-1")
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "merged/model.safetensors", "optimizer/optimizer.safetensors", "trainer_state.json"} {
		if _, err := os.Stat(filepath.Join(ckpt1, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(ckpt1, "model.safetensors")); err == nil {
		t.Error("a LoRA checkpoint holds a full model.safetensors beside its adapter")
	}
	opt, err := safetensors.ReadFile(filepath.Join(ckpt1, "optimizer", "optimizer.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range opt {
		if !strings.Contains(name, ".lora_") {
			t.Errorf("optimizer state of a LoRA run holds %s", name)
		}
	}
	if err := runTrain(ctx, append([]string{"--steps", "2", "--resume"}, common...)); err != nil {
		t.Fatal(err)
	}
	ckpt2 := filepath.Join(out, "checkpoints", "step-2")
	data, err := os.ReadFile(filepath.Join(out, "provenance.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var starts []trainProvenance
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var p trainProvenance
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatal(err)
		}
		starts = append(starts, p)
	}
	if len(starts) != 2 || starts[0].Adapter != start || starts[1].Adapter != ckpt1 || starts[1].Policy != base {
		t.Errorf("provenance: %+v, want the run started from %s and resumed from %s on %s", starts, start, ckpt1, base)
	}

	// model merge and --adapter agree, and a checkpoint given as --model is
	// refused with what to pass instead.
	dir := t.TempDir()
	merged := filepath.Join(dir, "merged")
	if code := dispatch(ctx, []string{"model", "merge", "--base", base, "--adapter", ckpt2, "--out", merged}); code != 0 {
		t.Fatalf("model merge exited %d", code)
	}
	input := filepath.Join(dir, "in.json")
	os.WriteFile(input, []byte(`{"input_ids": [[1, 2, 3, 4, 5, 6, 7, 8]]}`), 0o644)
	logits := func(args ...string) []float32 {
		path := filepath.Join(dir, "logits.safetensors")
		if code := dispatch(ctx, append([]string{"model", "logits", "--input", input, "--out", path}, args...)); code != 0 {
			t.Fatalf("model logits %v exited %d", args, code)
		}
		ts, err := safetensors.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := ts["logits"].Float32()
		return f
	}
	viaAdapter := logits("--model", base, "--adapter", ckpt2)
	viaMerged := logits("--model", merged)
	viaBase := logits("--model", base)
	worst, moved2 := 0.0, 0.0
	for i := range viaAdapter {
		worst = math.Max(worst, math.Abs(float64(viaAdapter[i]-viaMerged[i])))
		moved2 = math.Max(moved2, math.Abs(float64(viaAdapter[i]-viaBase[i])))
	}
	if worst > 1e-4 || moved2 == 0 {
		t.Errorf("merged checkpoint's logits differ from base + adapter by %g (the adapter moves them by %g)", worst, moved2)
	}
	stderr, code := captureStderr(t, func() int {
		return dispatch(ctx, []string{"model", "logits", "--model", ckpt2, "--input", input, "--out", filepath.Join(dir, "x.safetensors")})
	})
	if code != 2 || !strings.Contains(stderr, "--adapter") {
		t.Errorf("a LoRA checkpoint as --model: exit %d, %s", code, stderr)
	}
	// eval with the checkpoint's adapter takes the run's settings.
	stderr, code = captureStderr(t, func() int {
		return dispatch(ctx, []string{"eval", "--model", base, "--adapter", ckpt2, "--limit", "1", "--out", filepath.Join(dir, "eval"),
			"--agent.max_turns", "1", "--agent.max_tokens_per_turn", "8"})
	})
	if code != 0 || !strings.Contains(stderr, "settings of the training run") {
		t.Errorf("eval --adapter CHECKPOINT: exit %d, want the run's settings taken:\n%s", code, stderr)
	}
}

// An external RAG answerer gets the policy's budget for its one RAG turn,
// never 0 (agent.max_tokens_per_turn 0 means no per-turn bound). Mutation
// seen to fail: passing agent.max_tokens_per_turn through.
func TestRAGAnswerTokens(t *testing.T) {
	for _, c := range []struct{ perTurn, response, want int }{{0, 8192, 8192}, {48, 1200, 48}, {500, 64, 64}} {
		if got := ragAnswerTokens(selfplay.AgentConfig{MaxTokensPerTurn: c.perTurn, MaxResponseTokens: c.response}); got != c.want {
			t.Errorf("per turn %d, response %d: %d tokens, want %d", c.perTurn, c.response, got, c.want)
		}
	}
}
