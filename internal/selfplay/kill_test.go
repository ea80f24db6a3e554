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
// run resumes from its newest checkpoint. The moments are set by progress,
// not by the clock, so that a slow machine still kills runs that have
// written checkpoints: once early (perhaps before the first step ends), then
// a few milliseconds after the run reached step 1, 2 and 3.
func TestKillNineLeavesResumableRun(t *testing.T) {
	if dir := os.Getenv("SSP_KILL_CHILD_DIR"); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, moment := range []struct {
		afterStep int
		delay     time.Duration
	}{{0, 30 * time.Millisecond}, {1, 0}, {2, 3 * time.Millisecond}, {3, 11 * time.Millisecond}} {
		delay := moment.delay
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillNineLeavesResumableRun$")
		cmd.Env = append(os.Environ(), "SSP_KILL_CHILD_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		for deadline := time.Now().Add(2 * time.Minute); moment.afterStep > 0; time.Sleep(time.Millisecond) {
			if _, step, _ := LatestCheckpoint(dir); step >= moment.afterStep {
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("the run ended (%v) before saving step %d", err, moment.afterStep)
			default:
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				<-exited
				t.Fatalf("the run wrote no checkpoint of step %d within 2 minutes", moment.afterStep)
			}
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited

		ckpt, step, err := LatestCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		if step < moment.afterStep {
			t.Fatalf("killed after step %d was saved, but the newest checkpoint is step %d", moment.afterStep, step)
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
		t.Logf("killed %v after step %d: resumable at step %d, %d rollout files", delay, moment.afterStep, step, len(rollouts))
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
