package selfplay

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestKillNineLeavesResumableRun kills a training process with SIGKILL at
// several moments and checks that every file it left is valid and that the
// run resumes from its newest checkpoint.
func TestKillNineLeavesResumableRun(t *testing.T) {
	if dir := os.Getenv("SSP_KILL_CHILD_DIR"); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, delay := range []time.Duration{30 * time.Millisecond, 120 * time.Millisecond, 400 * time.Millisecond} {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillNineLeavesResumableRun$")
		cmd.Env = append(os.Environ(), "SSP_KILL_CHILD_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		ckpt, step, err := LatestCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		if step > 0 {
			for _, f := range []string{"config.json", "pool.json", "trainer_state.json"} {
				data, err := os.ReadFile(filepath.Join(ckpt, f))
				if err != nil || !json.Valid(data) {
					t.Fatalf("delay %v: checkpoint step %d: %s invalid (%v)", delay, step, f, err)
				}
			}
		}
		rollouts, _ := filepath.Glob(filepath.Join(dir, "rollouts", "*.jsonl"))
		for _, path := range rollouts {
			readLines(t, path) // fails on any invalid line
		}
		rd, err := OpenRunDir(dir, testConfig(), step)
		if err != nil {
			t.Fatalf("delay %v: resume at step %d: %v", delay, step, err)
		}
		rd.Close()
		rows := readLines(t, filepath.Join(dir, "metrics.jsonl"))
		if len(rows) > step {
			t.Fatalf("delay %v: %d metrics lines kept after resuming at step %d", delay, len(rows), step)
		}
		t.Logf("killed after %v: resumable at step %d, %d rollout files", delay, step, len(rollouts))
	}
}

// killChild trains on the scripted world until it is killed.
func killChild(dir string) {
	cfg := testConfig()
	g, _, _, _ := testGame(cfg)
	rd, err := OpenRunDir(dir, cfg, 0)
	if err != nil {
		os.Exit(2)
	}
	r := &Runner{Game: g, Dir: rd, Model: &dirModel{}, Optimizer: dirOptimizer{}}
	if err := r.Run(context.Background(), 1, 1_000_000); err != nil {
		os.Exit(3)
	}
}
