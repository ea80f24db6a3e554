// Package eval runs a solver over QA examples, scores its answers and
// writes a run directory: trajectories.jsonl, metrics.json, report.md and
// report.html. The solver is a function, so the same runner scores a
// precomputed predictions file or drives a model.
package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/judge"
	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/score"
)

// Finish reasons of a trajectory.
const (
	FinishAnswer      = "answer"       // ended with an <answer> tag
	FinishNoAnswer    = "no_answer"    // ended without one
	FinishTurnLimit   = "turn_limit"   // ran out of search turns
	FinishLength      = "length"       // ran out of tokens
	FinishFormatError = "format_error" // produced malformed tool calls
)

// Trajectory is what a solver did for one example.
type Trajectory struct {
	ID           string `json:"id"`
	Response     string `json:"response,omitempty"` // full text, tags included
	Prediction   string `json:"prediction"`         // extracted answer
	Turns        int    `json:"turns"`
	Searches     int    `json:"searches"`
	Tokens       int    `json:"tokens"`
	FinishReason string `json:"finish_reason"`
}

// SolveFunc answers a batch of examples, one trajectory per example (any order).
type SolveFunc func(ctx context.Context, batch []dataset.Example) ([]Trajectory, error)

// Config controls a run.
type Config struct {
	OutDir string // run directory; must not hold an eval run yet (see ReplaceRun and Force)
	// ReplaceRun replaces an earlier eval run at OutDir.
	ReplaceRun bool
	// Force replaces whatever directory is at OutDir (never a file).
	Force     bool
	BatchSize int          // examples per solver call; 0 means 32
	Judge     *judge.Judge // optional LLM judge
	Progress  *Progress    // progress lines with tokens/s and ETA; nil for none
	Title     string       // report heading; defaults to the directory name
	// Resume continues an interrupted run from the examples kept in
	// PartialDir(OutDir); without it such a directory is an error.
	Resume bool
	// Provenance is recorded in metrics.json and the report; Run fills in
	// its DataDigest and Examples.
	Provenance *Provenance
}

func (c Config) outOptions() outdir.Options {
	return outdir.Options{Force: c.Force, ForceFlag: "--force", Fresh: !c.ReplaceRun}
}

// Record is one line of trajectories.jsonl: the trajectory and its scores.
type Record struct {
	Trajectory
	Question      string   `json:"question"`
	GoldenAnswers []string `json:"golden_answers"`
	DataSource    string   `json:"data_source"`
	Hops          int      `json:"hops,omitempty"`
	EM            int      `json:"em"`
	F1            float64  `json:"f1"`
	SubEM         int      `json:"subem"`
	Judge         *bool    `json:"judge,omitempty"`
	JudgeError    string   `json:"judge_error,omitempty"`
}

// PartialDir is where a run keeps the examples it has finished until it
// completes: trajectories.jsonl, appended batch by batch, and
// provenance.json. An interrupted run leaves it for Config.Resume.
func PartialDir(outDir string) string { return filepath.Clean(outDir) + ".partial" }

// Run solves, scores and writes the run directory. Finished examples are
// appended to PartialDir(cfg.OutDir) batch by batch, so an interrupted run
// keeps them and Config.Resume continues from there; the complete
// directory is written into a temporary sibling and renamed into place, so
// OutDir is complete or absent.
func Run(ctx context.Context, cfg Config, examples []dataset.Example, solve SolveFunc) (*Metrics, error) {
	if cfg.OutDir == "" {
		return nil, fmt.Errorf("eval: output directory is empty")
	}
	if err := outdir.Check(cfg.OutDir, outdir.EvalRun, cfg.outOptions()); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if len(examples) == 0 {
		return nil, fmt.Errorf("eval: no examples")
	}
	seen := map[string]bool{}
	for _, e := range examples {
		if seen[e.ID] {
			return nil, fmt.Errorf("eval: duplicate example id %q", e.ID)
		}
		seen[e.ID] = true
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = 32
	}
	prov := Provenance{}
	if cfg.Provenance != nil {
		prov = *cfg.Provenance
	}
	prov.DataDigest, prov.Examples = DigestExamples(examples), len(examples)

	keep, records, err := openPartial(cfg.OutDir, cfg.Resume, &prov, seen)
	if err != nil {
		return nil, err
	}
	defer keep.close()
	done := make(map[string]bool, len(records))
	for _, r := range records {
		done[r.ID] = true
	}
	todo := make([]dataset.Example, 0, len(examples)-len(records))
	for _, e := range examples {
		if !done[e.ID] {
			todo = append(todo, e)
		}
	}
	kept := func(err error) error {
		if len(records) == 0 {
			// Nothing finished: leave nothing behind.
			keep.close()
			os.RemoveAll(PartialDir(cfg.OutDir))
			return err
		}
		return fmt.Errorf("%w; %d of %d examples are kept in %s, rerun with --resume to continue", err, len(records), len(examples), PartialDir(cfg.OutDir))
	}
	if cfg.Progress != nil {
		cfg.Progress.begin(len(examples), len(records))
		defer cfg.Progress.end()
	}
	start := time.Now()
	for lo := 0; lo < len(todo); lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, kept(fmt.Errorf("eval: %w", err))
		}
		part := todo[lo:min(lo+batch, len(todo))]
		trajs, err := solve(ctx, part)
		if err != nil {
			return nil, kept(fmt.Errorf("eval: solving examples %q to %q: %w", part[0].ID, part[len(part)-1].ID, err))
		}
		byID := make(map[string]Trajectory, len(trajs))
		for _, t := range trajs {
			byID[t.ID] = t
		}
		for _, e := range part {
			if _, ok := byID[e.ID]; !ok {
				return nil, kept(fmt.Errorf("eval: solver returned no trajectory for %q", e.ID))
			}
		}
		// Judge calls dominate scoring time; the judge bounds its own concurrency.
		scored := make([]Record, len(part))
		var wg sync.WaitGroup
		for i, e := range part {
			wg.Go(func() { scored[i] = scoreOne(ctx, cfg.Judge, e, byID[e.ID]) })
		}
		wg.Wait()
		if err := keep.append(scored); err != nil {
			return nil, kept(err)
		}
		records = append(records, scored...)
		if cfg.Progress != nil {
			cfg.Progress.addExamples(len(part))
		}
	}
	// Trajectories in the order of the examples, however the run was split.
	order := make(map[string]int, len(examples))
	for i, e := range examples {
		order[e.ID] = i
	}
	sort.SliceStable(records, func(a, b int) bool { return order[records[a].ID] < order[records[b].ID] })
	m := Summarize(records)
	m.Examples = len(records)
	m.Elapsed = time.Since(start).Seconds()
	m.Provenance = &prov
	if cfg.Judge != nil {
		c := cfg.Judge.Counters()
		m.Judge = &c
	}
	title := cfg.Title
	if title == "" {
		title = filepath.Base(cfg.OutDir)
	}
	if err := writeRunDir(cfg.OutDir, cfg.outOptions(), title, records, m); err != nil {
		return nil, err
	}
	keep.close()
	if err := os.RemoveAll(PartialDir(cfg.OutDir)); err != nil {
		return nil, fmt.Errorf("eval run %s: removing the partial results: %w", cfg.OutDir, err)
	}
	return m, nil
}

func scoreOne(ctx context.Context, j *judge.Judge, e dataset.Example, t Trajectory) Record {
	if t.FinishReason == "" {
		t.FinishReason = FinishAnswer
		if t.Prediction == "" {
			if a, ok := score.ExtractAnswer(t.Response); ok {
				t.Prediction = a
			} else {
				t.FinishReason = FinishNoAnswer
			}
		}
	}
	s := score.All(t.Prediction, e.GoldenAnswers)
	r := Record{Trajectory: t, Question: e.Question, GoldenAnswers: e.GoldenAnswers, DataSource: e.DataSource,
		Hops: e.Hops, EM: s.EM, F1: s.F1, SubEM: s.SubEM}
	if j != nil {
		ok := s.EM == 1
		if !ok && t.FinishReason == FinishAnswer {
			var err error
			ok, err = j.IsCorrect(ctx, e.Question, t.Prediction, e.GoldenAnswers)
			if err != nil {
				r.JudgeError = err.Error()
			}
		}
		r.Judge = &ok
	}
	return r
}

// Group aggregates the records of one dataset (or one hop count).
type Group struct {
	N           int            `json:"n"`
	EM          float64        `json:"em"`
	F1          float64        `json:"f1"`
	SubEM       float64        `json:"subem"`
	JudgeAcc    *float64       `json:"judge_acc,omitempty"`
	AvgTurns    float64        `json:"avg_turns"`
	AvgSearches float64        `json:"avg_searches"`
	AvgTokens   float64        `json:"avg_tokens"`
	Failures    map[string]int `json:"failures"` // finish reasons other than "answer"
}

// Metrics is metrics.json.
type Metrics struct {
	Examples  int              `json:"examples"`
	Elapsed   float64          `json:"elapsed_seconds"`
	Overall   Group            `json:"overall"`
	ByDataset map[string]Group `json:"by_dataset"`
	ByHops    map[string]Group `json:"by_hops,omitempty"`
	Judge     *judge.Counters  `json:"judge,omitempty"`
	// Provenance says what produced the run; absent in runs written before
	// it was recorded.
	Provenance *Provenance `json:"provenance,omitempty"`
}

// Summarize averages records overall, per dataset and per hop count.
func Summarize(records []Record) *Metrics {
	m := &Metrics{ByDataset: map[string]Group{}}
	byDS := map[string][]Record{}
	byHop := map[string][]Record{}
	for _, r := range records {
		byDS[r.DataSource] = append(byDS[r.DataSource], r)
		if r.Hops > 0 {
			k := strconv.Itoa(r.Hops)
			byHop[k] = append(byHop[k], r)
		}
	}
	m.Overall = group(records)
	for k, rs := range byDS {
		m.ByDataset[k] = group(rs)
	}
	if len(byHop) > 0 {
		m.ByHops = map[string]Group{}
		for k, rs := range byHop {
			m.ByHops[k] = group(rs)
		}
	}
	return m
}

func group(rs []Record) Group {
	g := Group{N: len(rs), Failures: map[string]int{}}
	judged, correct := 0, 0
	for _, r := range rs {
		g.EM += float64(r.EM)
		g.F1 += r.F1
		g.SubEM += float64(r.SubEM)
		g.AvgTurns += float64(r.Turns)
		g.AvgSearches += float64(r.Searches)
		g.AvgTokens += float64(r.Tokens)
		if r.FinishReason != FinishAnswer {
			g.Failures[r.FinishReason]++
		}
		if r.Judge != nil {
			judged++
			if *r.Judge {
				correct++
			}
		}
	}
	if g.N > 0 {
		n := float64(g.N)
		g.EM /= n
		g.F1 /= n
		g.SubEM /= n
		g.AvgTurns /= n
		g.AvgSearches /= n
		g.AvgTokens /= n
	}
	if judged > 0 {
		acc := float64(correct) / float64(judged)
		g.JudgeAcc = &acc
	}
	return g
}

// sortedKeys returns map keys in order, numerically when they are numbers.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, ea := strconv.Atoi(keys[i])
		b, eb := strconv.Atoi(keys[j])
		if ea == nil && eb == nil {
			return a < b
		}
		return keys[i] < keys[j]
	})
	return keys
}

// ReadMetrics loads metrics.json from a run directory.
func ReadMetrics(dir string) (*Metrics, error) {
	data, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err != nil {
		return nil, fmt.Errorf("eval run %s: %w", dir, err)
	}
	var m Metrics
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("eval run %s: metrics.json: %w", dir, err)
	}
	return &m, nil
}
