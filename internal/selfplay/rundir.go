package selfplay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ssp-project/ssp/internal/outdir"
)

// A run directory holds:
//
//	config.yaml                 the effective configuration
//	provenance.jsonl            what started or resumed the run: command, code revision, inputs (one line each; written by ssp train)
//	metrics.jsonl               one line per step
//	events.out.tfevents.*       the same scalars for TensorBoard
//	rollouts/step-N.jsonl       every trajectory of step N with rewards and verdicts
//	checkpoints/step-N/         model (Hugging Face layout), optimizer/, pool.json, trainer_state.json
//
// Every file is either written to a temporary name and renamed, or
// appended a whole line (or record) per write call and synced, so killing
// the process at any moment leaves every file valid; a torn last line of
// metrics.jsonl is dropped on resume.

// ModelSaver writes the policy in Hugging Face layout; *model.Model implements it.
type ModelSaver interface {
	Save(dir string) error
}

// StateSaver writes the optimizer state; *model.Trainer implements it.
type StateSaver interface {
	SaveState(dir string) error
}

// TrainerState is checkpoints/step-N/trainer_state.json.
type TrainerState struct {
	Step    int     `json:"step"`
	Time    string  `json:"time"`
	Metrics Metrics `json:"metrics"`
	Config  string  `json:"config"`
}

// RunDir writes a run's outputs.
type RunDir struct {
	Dir     string
	metrics *os.File
	events  *EventWriter
}

// OpenRunDir prepares dir for steps after resumeStep: it writes the
// effective config, keeps the metrics of steps up to resumeStep (dropping a
// torn last line) and opens a new TensorBoard event file. A fresh run
// (resumeStep 0) refuses a directory that already holds checkpoints.
func OpenRunDir(dir string, cfg Config, resumeStep int) (*RunDir, error) {
	if err := outdir.Check(dir, outdir.Run, outdir.Options{Legacy: isRunDir}); err != nil {
		return nil, fmt.Errorf("run.out: %w", err)
	}
	for _, sub := range []string{"", "rollouts", "checkpoints"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
	}
	if outdir.KindOf(dir) != outdir.Run {
		if err := outdir.Mark(dir, outdir.Run); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
	}
	// Temporary checkpoints of a run killed while saving.
	if entries, err := os.ReadDir(filepath.Join(dir, "checkpoints")); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".step-") && strings.Contains(e.Name(), ".tmp-") {
				os.RemoveAll(filepath.Join(dir, "checkpoints", e.Name()))
			}
		}
	}
	if resumeStep == 0 {
		if _, step, err := LatestCheckpoint(dir); err != nil {
			return nil, err
		} else if step > 0 {
			return nil, fmt.Errorf("run directory %s already holds checkpoints (latest step %d): add --resume to continue it, or choose another --out", dir, step)
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.yaml"), []byte(cfg.Effective())); err != nil {
		return nil, err
	}
	metricsPath := filepath.Join(dir, "metrics.jsonl")
	if err := trimMetrics(metricsPath, resumeStep); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(metricsPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	events, err := NewEventWriter(dir)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &RunDir{Dir: dir, metrics: f, events: events}, nil
}

// isRunDir recognises a run directory written before output directories
// were marked.
func isRunDir(dir string) bool {
	for _, name := range []string{"config.yaml", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// Close closes the metrics and event files.
func (r *RunDir) Close() error {
	return errors.Join(r.metrics.Close(), r.events.Close())
}

// WriteStep records a finished step: its rollouts file, its metrics line
// and its TensorBoard event.
func (r *RunDir) WriteStep(step int, res *StepResult) error {
	if err := WriteRollouts(r.Dir, step, res.Rollouts); err != nil {
		return err
	}
	line, err := json.Marshal(res.Metrics)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if _, err := r.metrics.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := r.metrics.Sync(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return r.events.WriteScalars(step, res.Metrics)
}

// WriteRollouts writes the rollouts file of step N of the run directory
// dir, rollouts/step-N.jsonl (the directory must exist), one record a line.
func WriteRollouts(dir string, step int, recs []RolloutRecord) error {
	var rollouts bytes.Buffer
	enc := json.NewEncoder(&rollouts)
	enc.SetEscapeHTML(false)
	for _, rec := range recs {
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("rollouts: %w", err)
		}
	}
	return writeFileAtomic(filepath.Join(dir, "rollouts", fmt.Sprintf("step-%d.jsonl", step)), rollouts.Bytes())
}

var rolloutsFileName = regexp.MustCompile(`^step-(\d+)\.jsonl$`)

// ReadRollouts reads the rollouts files of the run directory dir,
// rollouts/step-N.jsonl, in step order, and calls each with every record in
// file order. Errors name the file and line; a directory without step
// files is an error.
func ReadRollouts(dir string, each func(step int, r RolloutRecord) error) error {
	rollouts := filepath.Join(dir, "rollouts")
	entries, err := os.ReadDir(rollouts)
	if err != nil {
		return fmt.Errorf("%s: %w (a run directory of ssp train)", dir, err)
	}
	type file struct {
		step int
		path string
	}
	var files []file
	for _, e := range entries {
		if m := rolloutsFileName.FindStringSubmatch(e.Name()); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil {
				return fmt.Errorf("%s: step number: %w", filepath.Join(rollouts, e.Name()), err)
			}
			files = append(files, file{n, filepath.Join(rollouts, e.Name())})
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("%s: no step-N.jsonl files", rollouts)
	}
	slices.SortFunc(files, func(a, b file) int { return a.step - b.step })
	for _, f := range files {
		if err := readRolloutsFile(f.path, f.step, each); err != nil {
			return err
		}
	}
	return nil
}

func readRolloutsFile(path string, step int, each func(step int, r RolloutRecord) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var r RolloutRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if err := each(step, r); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// SaveCheckpoint writes checkpoints/step-N through a temporary directory
// renamed into place (package outdir), so a listed checkpoint is always
// complete.
func (r *RunDir) SaveCheckpoint(step int, m ModelSaver, opt StateSaver, pool *ProblemPool, state TrainerState) error {
	final := filepath.Join(r.Dir, "checkpoints", fmt.Sprintf("step-%d", step))
	return outdir.Write(final, outdir.Checkpoint, outdir.Options{Legacy: isCheckpoint}, func(tmp string) error {
		if err := m.Save(tmp); err != nil {
			return fmt.Errorf("checkpoint step %d: model: %w", step, err)
		}
		if opt != nil {
			if err := opt.SaveState(filepath.Join(tmp, "optimizer")); err != nil {
				return fmt.Errorf("checkpoint step %d: optimizer: %w", step, err)
			}
		}
		if err := pool.Save(filepath.Join(tmp, "pool.json")); err != nil {
			return fmt.Errorf("checkpoint step %d: %w", step, err)
		}
		state.Step = step
		state.Time = time.Now().UTC().Format(time.RFC3339)
		data, err := json.MarshalIndent(state, "", " ")
		if err != nil {
			return fmt.Errorf("checkpoint step %d: %w", step, err)
		}
		// trainer_state.json is written last: its presence marks
		// completeness even for a directory copied by hand.
		return writeFileAtomic(filepath.Join(tmp, "trainer_state.json"), data)
	})
}

// isCheckpoint recognises a complete checkpoint written before output
// directories were marked.
func isCheckpoint(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "trainer_state.json"))
	return err == nil
}

// LatestCheckpoint returns the newest complete checkpoint of a run
// directory (one with trainer_state.json), or step 0 when there is none.
func LatestCheckpoint(dir string) (path string, step int, err error) {
	root := filepath.Join(dir, "checkpoints")
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("checkpoints: %w", err)
	}
	var steps []int
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "step-")
		if !ok || !e.IsDir() {
			continue
		}
		s, err := strconv.Atoi(n)
		if err != nil || s <= 0 {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), "trainer_state.json")); err == nil {
			steps = append(steps, s)
		}
	}
	if len(steps) == 0 {
		return "", 0, nil
	}
	sort.Ints(steps)
	s := steps[len(steps)-1]
	return filepath.Join(root, fmt.Sprintf("step-%d", s)), s, nil
}

// LoadCheckpointPool reads the problem pool saved with a checkpoint.
func LoadCheckpointPool(checkpoint string) (*ProblemPool, error) {
	return LoadPool(filepath.Join(checkpoint, "pool.json"))
}

// trimMetrics keeps the complete lines of metrics.jsonl whose step is at
// most lastStep and drops everything from the first unreadable line on.
func trimMetrics(path string, lastStep int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	var kept bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	complete := bytes.HasSuffix(data, []byte("\n"))
	lines := bytes.Count(data, []byte("\n"))
	for i := 0; sc.Scan(); i++ {
		if i >= lines && !complete {
			break // torn last line
		}
		var row struct {
			Step *float64 `json:"step"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil || row.Step == nil {
			break
		}
		if int(*row.Step) <= lastStep {
			kept.Write(sc.Bytes())
			kept.WriteByte('\n')
		}
	}
	if kept.Len() == len(data) {
		return nil
	}
	return writeFileAtomic(path, kept.Bytes())
}

// writeFileAtomic writes data to a temporary file in the same directory,
// syncs it and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	return outdir.WriteFile(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// Runner plays and trains steps, writing the run directory and checkpoints.
type Runner struct {
	Game      *Game
	Dir       *RunDir
	Model     ModelSaver
	Optimizer StateSaver
	// Validate, if set, evaluates the current policy on held-out questions
	// (run.eval_every) and returns metrics to add to the step's line; with
	// run.eval_first it is called with step 0 before the first step of a
	// fresh run.
	Validate func(ctx context.Context, step int) (Metrics, error)
}

// Run plays steps first..last. A checkpoint is written every
// run.save_every steps and after the last one; a cancelled context stops
// between or inside steps, leaving the last checkpoint as the resume point.
func (r *Runner) Run(ctx context.Context, first, last int) error {
	cfg := r.Game.Config
	validating := r.Validate != nil && cfg.Run.EvalEvery > 0
	if validating && first == 1 && cfg.Run.EvalFirst {
		m, err := r.Validate(ctx, 0)
		if err != nil {
			return fmt.Errorf("validation before step 1: %w", err)
		}
		r.Game.Progress.Validation(0, m)
	}
	for step := first; step <= last; step++ {
		res, err := r.Game.Step(ctx, step)
		if err != nil {
			return err
		}
		var validation Metrics
		if validating && (step%cfg.Run.EvalEvery == 0 || step == last) {
			if validation, err = r.Validate(ctx, step); err != nil {
				return fmt.Errorf("step %d: validation: %w", step, err)
			}
			res.Metrics = append(res.Metrics, validation...)
		}
		if err := r.Dir.WriteStep(step, res); err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		r.Game.Progress.Step(res.Metrics)
		if validation != nil {
			r.Game.Progress.Validation(step, validation)
		}
		if step%cfg.Run.SaveEvery == 0 || step == last {
			state := TrainerState{Metrics: res.Metrics, Config: cfg.Effective()}
			if err := r.Dir.SaveCheckpoint(step, r.Model, r.Optimizer, r.Game.Pool, state); err != nil {
				return err
			}
			slog.Info("checkpoint saved", "step", step, "dir", filepath.Join(r.Dir.Dir, "checkpoints", fmt.Sprintf("step-%d", step)))
		}
	}
	r.Game.Progress.Summary()
	return nil
}
