// Command expreport renders the results of the training-recipe comparison
// into docs/experiments.md: a results table at each row's last benchmark
// evaluation (the mean over the row's seeds, with their range), a sentence
// comparing the 2–4-hop gains of self-play and supervised RL, a table of the
// proposed questions' difficulty early and late in training, a table of
// what the updates learnt from (the solver's questions whose rollouts'
// rewards differ, counted from each run's rollouts files), and SVG curves
// written next to the document.
//
//	go run ./scripts/expreport --runs DIR --doc docs/experiments.md --plots docs/experiments [--world WORLD] [--curves=false]
//
// When the runs played on a generated world (ssp world gen; found from the
// runs' provenance.jsonl, or named by --world), the self-play rows' proposed
// questions are also graded against its facts (internal/worldgrade).
//
// DIR holds the `ssp train` run directories <row>-s<seed> written by
// scripts/experiment.sh (a directory named <row> alone is read as the row's
// only run). Only the text between the lines <!-- results:begin --> and
// <!-- results:end --> is replaced.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ssp-project/ssp/internal/eval"
)

// Markers delimiting the generated part of the document.
const (
	beginMarker = "<!-- results:begin -->"
	endMarker   = "<!-- results:end -->"
)

// knownRows are the recipes of docs/experiments.md, in table order.
var knownRows = []struct{ Name, Label string }{
	{"ssp", "SSP self-play, no labels"},
	{"supervised", "supervised RL on train_qa"},
	{"no-rag", "SSP without RAG verification"},
	{"frozen-proposer", "SSP, proposer not trained"},
}

// proposerKeys are the metrics.jsonl values only a self-play proposer produces.
var proposerKeys = []string{"proposer_reward", "valid_question_rate", "valid_question_hops", "valid_question_searches"}

// multiHops are the hop groups averaged into the multi-hop EM.
var multiHops = []string{"2", "3", "4"}

func main() {
	runs := flag.String("runs", "", "directory holding the training run directories <row>-s<seed>")
	doc := flag.String("doc", "docs/experiments.md", "markdown file to update between the results markers")
	plots := flag.String("plots", "", "directory for the SVG curves (default: the doc path without .md)")
	curves := flag.Bool("curves", true, "draw the SVG curves (false: tables only, for reports of more rows than a plot's ten colors tell apart)")
	worldDir := flag.String("world", "", "generated world the runs played on, to grade their proposed questions (default: the directory of the seeds file in the first self-play run's provenance.jsonl, when it holds world.json)")
	flag.Parse()
	if *runs == "" {
		fmt.Fprintln(os.Stderr, "expreport: --runs is required")
		flag.Usage()
		os.Exit(2)
	}
	if !*curves {
		*plots = ""
	} else if *plots == "" {
		*plots = strings.TrimSuffix(*doc, filepath.Ext(*doc))
	}
	if err := generate(*runs, *doc, *plots, *worldDir, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "expreport:", err)
		os.Exit(1)
	}
}

// generate reads the runs, writes the SVG curves into plotsDir and replaces
// the results block of docPath. worldDir names the world to grade the
// proposed questions against ("" = found from the runs' provenance, or
// none); plotsDir "" draws no curves. Warnings go to warn.
func generate(runsDir, docPath, plotsDir, worldDir string, warn io.Writer) error {
	// Fail on a document without markers before writing anything.
	docText, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	if _, _, err := splitMarkers(docPath, docText); err != nil {
		return err
	}
	rows, err := loadRows(runsDir, warn)
	if err != nil {
		return err
	}
	base, baseRow := baseModel(rows, warn)
	var rel string
	var svgs []svgFile
	if plotsDir != "" {
		if rel, err = filepath.Rel(filepath.Dir(docPath), plotsDir); err != nil {
			return fmt.Errorf("plots directory %s relative to %s: %w", plotsDir, docPath, err)
		}
		svgs = renderPlots(rows)
		if err := os.MkdirAll(plotsDir, 0o755); err != nil {
			return err
		}
		for _, p := range svgs {
			if err := writeFileAtomic(filepath.Join(plotsDir, p.File), p.SVG); err != nil {
				return err
			}
		}
	}
	graded, err := renderWorldGrades(rows, worldDir)
	if err != nil {
		return err
	}
	learnt, err := renderSignal(rows)
	if err != nil {
		return err
	}
	tables := learnt
	if learnt != "" && graded != "" {
		tables += "\n"
	}
	tables += graded
	block := renderResults(rows, base, baseRow, tables, filepath.ToSlash(rel), svgs)
	updated, err := replaceBlock(docPath, docText, block)
	if err != nil {
		return err
	}
	return writeFileAtomic(docPath, updated)
}

// run is one `ssp train` run directory: <row>-s<seed>, or <row> for a
// single run without a seed in its name.
type run struct {
	Name      string        // directory name
	Dir       string        // its path
	SeedsFile string        // the seeds file its provenance.jsonl names, if any
	Seed      int           // -1 for a directory named after its row alone
	Ran       bool          // has metrics.jsonl and at least one evaluation
	Steps     []stepValues  // metrics.jsonl, by step
	Evals     []evalAtStep  // eval/step-N/metrics.json, by step
	trainSecs float64       // sum of step_seconds
	wallSecs  float64       // wall_seconds written by scripts/experiment.sh; NaN when absent
	lastEval  *eval.Metrics // at the last evaluated step
	lastStep  int
}

// stepValues is one metrics.jsonl line; missing and null values are NaN.
type stepValues struct {
	Step   float64
	Values map[string]float64
}

func (s stepValues) get(key string) float64 {
	if v, ok := s.Values[key]; ok {
		return v
	}
	return math.NaN()
}

// evalAtStep is one held-out benchmark evaluation.
type evalAtStep struct {
	Step    int
	Metrics *eval.Metrics
}

// row is one training recipe: the runs of its seeds.
type row struct {
	Name, Label string
	Runs        []*run // every run directory of the row, by seed
	Used        []*run // the runs that ran to the row's last evaluated step
	color       string // fixed per row across all plots
}

// ran reports whether any run of the row has an evaluation.
func (r *row) ran() bool { return len(r.Used) > 0 }

// seededRun matches the name of a run directory <row>-s<seed>.
var seededRun = regexp.MustCompile(`^(.+)-s([0-9]+)$`)

// loadRows reads the known rows in order, then any other row by name. A
// row's runs are the directories <row>-s<seed>, by seed; a directory named
// <row> alone (an experiment run before seeds) is the row's only run when
// there is no seeded one. Runs stopped before the last evaluated step of
// their row's other runs are left out of the row's results, with a warning.
func loadRows(runsDir string, warn io.Writer) ([]*row, error) {
	entries, err := os.ReadDir(runsDir)
	if err != nil {
		return nil, err
	}
	byName := map[string]*row{}
	var rows []*row
	add := func(name, label string) *row {
		if r, ok := byName[name]; ok {
			return r
		}
		r := &row{Name: name, Label: label}
		byName[name] = r
		rows = append(rows, r)
		return r
	}
	for _, k := range knownRows {
		add(k.Name, k.Label)
	}
	plain := map[string]*run{}
	for _, e := range entries { // ReadDir sorts by name
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		// Stat follows links: a link to a run made elsewhere (a folder of
		// links gathers the runs of several experiments into one report)
		// counts as a run.
		fi, err := os.Stat(filepath.Join(runsDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			continue
		}
		name, seed := e.Name(), -1
		if m := seededRun.FindStringSubmatch(e.Name()); m != nil {
			n, err := strconv.Atoi(m[2])
			if err == nil {
				name, seed = m[1], n
			}
		}
		ru := &run{Name: e.Name(), Seed: seed}
		if err := ru.load(filepath.Join(runsDir, e.Name())); err != nil {
			return nil, err
		}
		r := add(name, name)
		if seed < 0 {
			plain[name] = ru
			continue
		}
		r.Runs = append(r.Runs, ru)
	}
	for i, r := range rows {
		r.color = palette[i%len(palette)]
		if p, ok := plain[r.Name]; ok {
			if len(r.Runs) == 0 {
				r.Runs = []*run{p}
			} else {
				fmt.Fprintf(warn, "expreport: warning: row %q has seeded runs; the run directory %q without a seed is left out\n", r.Name, p.Name)
			}
		}
		slices.SortStableFunc(r.Runs, func(a, b *run) int { return a.Seed - b.Seed })
		last := -1
		for _, ru := range r.Runs {
			if ru.Ran {
				last = max(last, ru.lastStep)
			}
		}
		for _, ru := range r.Runs {
			switch {
			case !ru.Ran:
			case ru.lastStep < last:
				fmt.Fprintf(warn, "expreport: warning: run %q was last evaluated at step %d, the other runs of row %q at step %d; it is left out\n",
					ru.Name, ru.lastStep, r.Name, last)
			default:
				r.Used = append(r.Used, ru)
			}
		}
	}
	return rows, nil
}

// load fills the run from its directory; a directory without
// metrics.jsonl or without evaluations leaves the run not run.
func (r *run) load(dir string) error {
	r.wallSecs = math.NaN()
	r.Dir = dir
	if data, err := os.ReadFile(filepath.Join(dir, "provenance.jsonl")); err == nil {
		var p struct {
			Seeds string `json:"seeds"`
		}
		first, _, _ := bytes.Cut(data, []byte("\n"))
		if json.Unmarshal(first, &p) == nil {
			r.SeedsFile = p.Seeds
		}
	}
	metricsPath := filepath.Join(dir, "metrics.jsonl")
	if _, err := os.Stat(metricsPath); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	steps, err := readMetricsJSONL(metricsPath)
	if err != nil {
		return err
	}
	evals, err := readEvals(filepath.Join(dir, "eval"))
	if err != nil {
		return err
	}
	if len(evals) == 0 {
		return nil
	}
	r.Ran, r.Steps, r.Evals = true, steps, evals
	for _, s := range steps {
		if v := s.get("step_seconds"); !math.IsNaN(v) {
			r.trainSecs += v
		}
	}
	last := evals[len(evals)-1]
	r.lastEval, r.lastStep = last.Metrics, last.Step
	wallPath := filepath.Join(dir, "wall_seconds")
	if data, err := os.ReadFile(wallPath); err == nil {
		v, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
		if err != nil || v < 0 {
			return fmt.Errorf("%s: not a number of seconds: %q", wallPath, strings.TrimSpace(string(data)))
		}
		r.wallSecs = v
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// readMetricsJSONL reads the numeric values of each line, keyed by name. A
// step logged twice (a resumed run) keeps its last line.
func readMetricsJSONL(path string) ([]stepValues, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	byStep := map[float64]stepValues{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(line, &raw); err != nil {
			return nil, fmt.Errorf("%s:%d: malformed JSON: %w", path, i+1, err)
		}
		s := stepValues{Values: map[string]float64{}}
		for k, msg := range raw {
			var v *float64
			if err := json.Unmarshal(msg, &v); err != nil {
				continue // not a number: not a metric this report reads
			}
			if v == nil {
				s.Values[k] = math.NaN()
			} else {
				s.Values[k] = *v
			}
		}
		step, ok := s.Values["step"]
		if !ok || math.IsNaN(step) {
			return nil, fmt.Errorf("%s:%d: no numeric \"step\"", path, i+1)
		}
		s.Step = step
		byStep[step] = s
	}
	steps := make([]stepValues, 0, len(byStep))
	for _, s := range byStep {
		steps = append(steps, s)
	}
	slices.SortFunc(steps, func(a, b stepValues) int { return cmpFloat(a.Step, b.Step) })
	return steps, nil
}

// readEvals reads every evalDir/step-N/metrics.json, by step. Temporary
// directories left by an interrupted evaluation are ignored.
func readEvals(evalDir string) ([]evalAtStep, error) {
	entries, err := os.ReadDir(evalDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var evals []evalAtStep
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "step-")
		if !ok || !e.IsDir() {
			continue
		}
		step, err := strconv.Atoi(n)
		if err != nil || step < 0 {
			continue
		}
		p := filepath.Join(evalDir, e.Name(), "metrics.json")
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var m eval.Metrics
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: malformed JSON: %w", p, err)
		}
		evals = append(evals, evalAtStep{Step: step, Metrics: &m})
	}
	slices.SortFunc(evals, func(a, b evalAtStep) int { return a.Step - b.Step })
	return evals, nil
}

// baseModel returns the step-0 evaluation of the first run that has one
// (all runs start from the same model), in row and seed order, and the run
// it came from; it warns when another run's step-0 disagrees.
func baseModel(rows []*row, warn io.Writer) (*eval.Metrics, *run) {
	var base *eval.Metrics
	var from *run
	for _, r := range rows {
		for _, ru := range r.Runs {
			if !ru.Ran || ru.Evals[0].Step != 0 {
				continue
			}
			m := ru.Evals[0].Metrics
			if base == nil {
				base, from = m, ru
				continue
			}
			if math.Abs(m.Overall.EM-base.Overall.EM) > 1e-9 {
				fmt.Fprintf(warn, "expreport: warning: base model of run %q has EM %.6f at step 0, run %q has %.6f; using %q\n",
					ru.Name, m.Overall.EM, from.Name, base.Overall.EM, from.Name)
			}
		}
	}
	return base, from
}

// hopEM is the EM of one hop group, NaN when the group is absent.
func hopEM(m *eval.Metrics, hops string) float64 {
	if g, ok := m.ByHops[hops]; ok && g.N > 0 {
		return g.EM
	}
	return math.NaN()
}

// multiHopEM is the unweighted mean EM of the 2-, 3- and 4-hop groups that
// are present; NaN when none is.
func multiHopEM(m *eval.Metrics) float64 {
	var sum float64
	var n int
	for _, h := range multiHops {
		if v := hopEM(m, h); !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// stat summarizes one value over the seeds of a row.
type stat struct {
	Mean, Min, Max float64
	N              int // values that are not NaN
}

// summarize is the mean, minimum and maximum of the values that are not
// NaN; the mean is NaN when there is none.
func summarize(vals []float64) stat {
	st := stat{Mean: math.NaN(), Min: math.Inf(1), Max: math.Inf(-1)}
	var sum float64
	for _, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		sum += v
		st.N++
		st.Min, st.Max = math.Min(st.Min, v), math.Max(st.Max, v)
	}
	if st.N > 0 {
		st.Mean = sum / float64(st.N)
	}
	return st
}

// over summarizes value over the runs.
func over(runs []*run, value func(*run) float64) stat {
	vals := make([]float64, len(runs))
	for i, ru := range runs {
		vals[i] = value(ru)
	}
	return summarize(vals)
}

// withRange formats the mean of st, followed by the range over seeds in
// parentheses when there are several values: "30.0 (25.0–35.0)"; signed
// values are joined by " to " instead of a dash.
func withRange(st stat, format func(float64) string) string {
	if st.N == 0 {
		return "—"
	}
	if st.N == 1 {
		return format(st.Mean)
	}
	lo, hi := format(st.Min), format(st.Max)
	sep := "–"
	if strings.HasPrefix(lo, "+") || strings.HasPrefix(lo, "-") {
		sep = " to "
	}
	return fmt.Sprintf("%s (%s%s%s)", format(st.Mean), lo, sep, hi)
}

// points formats a fraction as percentage points with one decimal.
func points(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v*100, 'f', 1, 64)
}

// signedPoints formats a difference of fractions as signed points.
func signedPoints(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	p := math.Round(v*1000) / 10
	if p == 0 {
		p = 0 // no "-0.0"
	}
	return fmt.Sprintf("%+.1f", p)
}

// fixed returns a formatter with dec decimals.
func fixed(dec int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', dec, 64) }
}

// signedFixed returns a formatter of signed values with dec decimals.
func signedFixed(dec int) func(float64) string {
	return func(v float64) string {
		s := strconv.FormatFloat(v, 'f', dec, 64)
		if !strings.HasPrefix(s, "-") {
			s = "+" + s
		} else if strings.Trim(s, "-0.") == "" {
			s = "+" + s[1:] // no "-0.00"
		}
		return s
	}
}

const notRunCells = "— | — | — | — | — | — | — | — | — | —"

// renderResults writes the results block: the table, the gain sentence, the
// difficulty trend, then tables (the learning-signal and world-grade ones,
// when there are any) and the plots.
func renderResults(rows []*row, base *eval.Metrics, baseRun *run, tables, plotsRel string, svgs []svgFile) string {
	var b strings.Builder
	b.WriteString("<!-- generated by `go run ./scripts/expreport`; edits inside the markers are overwritten -->\n\n")
	b.WriteString("| row | seeds | step | EM | EM 1-hop | EM 2-hop | EM 3-hop | EM 4-hop | F1 | avg searches | Δ EM (2–4 hops) | training seconds | wall minutes (longest run) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	baseMulti := math.NaN()
	if base != nil {
		baseMulti = multiHopEM(base)
		fmt.Fprintf(&b, "| base model (step 0 of `%s`) | 1 | 0 | %s | — | — | — |\n", baseRun.Name, metricCells([]*run{{lastEval: base}}))
	} else {
		fmt.Fprintf(&b, "| base model | 0 | not run | %s |\n", notRunCells)
	}
	for _, r := range rows {
		name := fmt.Sprintf("`%s` — %s", r.Name, r.Label)
		if r.Label == r.Name {
			name = fmt.Sprintf("`%s`", r.Name)
		}
		if !r.ran() {
			fmt.Fprintf(&b, "| %s | 0 | not run | %s |\n", name, notRunCells)
			continue
		}
		delta := over(r.Used, func(ru *run) float64 { return multiHopEM(ru.lastEval) - baseMulti })
		train := over(r.Used, func(ru *run) float64 { return ru.trainSecs })
		wall := over(r.Used, func(ru *run) float64 { return ru.wallSecs })
		wallCell := "—"
		if wall.N > 0 {
			wallCell = strconv.FormatFloat(wall.Max/60, 'f', 1, 64)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s |\n", name, len(r.Used), r.Used[0].lastStep, metricCells(r.Used),
			withRange(delta, signedPoints), withRange(train, fixed(0)), wallCell)
	}
	b.WriteString("\nEM and F1 are percentage points on the held-out benchmark at each row's last evaluated step; ")
	b.WriteString("Δ EM (2–4 hops) is the mean EM of the 2-, 3- and 4-hop groups minus the base model's. ")
	b.WriteString("A row with several seeds shows the mean over its seeds, then the range (min–max) over them in parentheses. ")
	b.WriteString("Training seconds are the sum of the steps' times; wall minutes are the wall-clock time of the row's longest run, ")
	b.WriteString("validations included, as timed by the script that trained it (`scripts/experiment.sh`, `scripts/variants.sh`; — for runs neither timed).\n\n")
	b.WriteString(gainSentence(rows, baseMulti))
	b.WriteString("\n\n")
	b.WriteString(renderTrend(rows))
	if tables != "" {
		b.WriteString("\n" + tables)
	}
	for _, p := range svgs {
		fmt.Fprintf(&b, "\n![%s](%s)\n", p.Title, path.Join(plotsRel, p.File))
	}
	return b.String()
}

// metricCells are the EM, per-hop EM, F1 and average-searches cells over
// the runs' last evaluations.
func metricCells(runs []*run) string {
	metric := func(value func(*eval.Metrics) float64, format func(float64) string) string {
		return withRange(over(runs, func(ru *run) float64 { return value(ru.lastEval) }), format)
	}
	cells := []string{metric(func(m *eval.Metrics) float64 { return m.Overall.EM }, points)}
	for _, h := range []string{"1", "2", "3", "4"} {
		cells = append(cells, metric(func(m *eval.Metrics) float64 { return hopEM(m, h) }, points))
	}
	cells = append(cells, metric(func(m *eval.Metrics) float64 { return m.Overall.F1 }, points),
		metric(func(m *eval.Metrics) float64 { return m.Overall.AvgSearches }, fixed(2)))
	return strings.Join(cells, " | ")
}

// gainText is a gain in points with the number of seeds and, for several, their range.
func gainText(st stat) string {
	if st.N == 1 {
		return signedPoints(st.Mean) + " points (1 seed)"
	}
	return fmt.Sprintf("%s points (mean of %d seeds, range %s to %s)", signedPoints(st.Mean), st.N, signedPoints(st.Min), signedPoints(st.Max))
}

// gainSentence compares the mean 2–4-hop gains of SSP and supervised RL.
func gainSentence(rows []*row, baseMulti float64) string {
	gain := map[string]stat{}
	for _, r := range rows {
		gain[r.Name] = over(r.Used, func(ru *run) float64 { return multiHopEM(ru.lastEval) - baseMulti })
	}
	ssp, sup := gain["ssp"], gain["supervised"]
	switch {
	case math.IsNaN(baseMulti):
		return "The 2–4-hop gains cannot be computed: there is no base-model evaluation with 2–4-hop groups."
	case ssp.N == 0:
		return "The 2–4-hop gain of SSP cannot be computed: the `ssp` row has not run or has no 2–4-hop groups."
	case sup.N == 0:
		return fmt.Sprintf("SSP gains %s of 2–4-hop EM over the base model; the supervised row has not run, so the ratio to its gain is undefined.",
			gainText(ssp))
	case sup.Mean <= 1e-9: // not positive beyond rounding noise of the hop means
		return fmt.Sprintf("SSP gains %s of 2–4-hop EM over the base model; supervised RL gains %s, so the ratio to the supervised gain is undefined.",
			gainText(ssp), gainText(sup))
	default:
		return fmt.Sprintf("SSP gains %s of 2–4-hop EM over the base model, %.1f%% of the %s gained by supervised RL (the ratio of the means).",
			gainText(ssp), 100*ssp.Mean/sup.Mean, gainText(sup))
	}
}

// trendKeys are the metrics.jsonl values of the proposer's difficulty
// trend, each counted on the steps where its denominator is positive.
var trendKeys = []struct{ Key, Label, Denominator string }{
	{"valid_question_hops", "hops per valid question", "questions_valid"},
	{"valid_question_searches", "searches per valid question", "questions_valid"},
	{"solver_accuracy", "solver accuracy", "solver_rollouts"},
}

// thirds are the first and the last third of the steps (at least one step each).
func thirds(steps []stepValues) (first, last []stepValues) {
	if len(steps) == 0 {
		return nil, nil
	}
	k := max(len(steps)/3, 1)
	return steps[:k], steps[len(steps)-k:]
}

// trendMean is the mean of key over the steps whose denominator is
// positive (or not logged) and whose value is not null; NaN when none is.
func trendMean(steps []stepValues, key, denominator string) float64 {
	vals := make([]float64, 0, len(steps))
	for _, s := range steps {
		if d := s.get(denominator); !math.IsNaN(d) && d <= 0 {
			continue
		}
		vals = append(vals, s.get(key))
	}
	return summarize(vals).Mean
}

// trendCell is "first → last (Δ change)" averaged over the runs, with the
// range of the change over seeds when there are several.
func trendCell(runs []*run, key, denominator string) string {
	var firsts, lasts, deltas []float64
	for _, ru := range runs {
		first, last := thirds(ru.Steps)
		f, l := trendMean(first, key, denominator), trendMean(last, key, denominator)
		firsts, lasts, deltas = append(firsts, f), append(lasts, l), append(deltas, l-f)
	}
	f, l, d := summarize(firsts), summarize(lasts), summarize(deltas)
	if f.N == 0 && l.N == 0 {
		return "—"
	}
	format := fixed(2)
	cell := fmt.Sprintf("%s → %s", nanDash(f.Mean, format), nanDash(l.Mean, format))
	switch {
	case d.N == 1:
		cell += fmt.Sprintf(" (Δ %s)", signedFixed(2)(d.Mean))
	case d.N > 1:
		cell += fmt.Sprintf(" (Δ %s, range %s to %s)", signedFixed(2)(d.Mean), signedFixed(2)(d.Min), signedFixed(2)(d.Max))
	}
	return cell
}

func nanDash(v float64, format func(float64) string) string {
	if math.IsNaN(v) {
		return "—"
	}
	return format(v)
}

// thirdsLabel names the steps of the two thirds, "1–2 / 5–6 of 6", or
// "varies" when the runs logged different steps.
func thirdsLabel(runs []*run) string {
	label := ""
	for i, ru := range runs {
		first, last := thirds(ru.Steps)
		l := "—"
		if len(first) > 0 {
			l = fmt.Sprintf("%s / %s of %d", stepRange(first), stepRange(last), len(ru.Steps))
		}
		if i > 0 && l != label {
			return "varies"
		}
		label = l
	}
	return label
}

// stepRange names the steps of a third: "5–8", or "5" for one step.
func stepRange(steps []stepValues) string {
	a, b := steps[0].Step, steps[len(steps)-1].Step
	if a == b {
		return strconv.FormatFloat(a, 'f', -1, 64)
	}
	return strconv.FormatFloat(a, 'f', -1, 64) + "–" + strconv.FormatFloat(b, 'f', -1, 64)
}

// renderTrend is the table of the proposer's difficulty trend: whether the
// valid questions of the self-play rows need more hops and searches, and
// how the solver fares, from the first to the last third of the steps.
func renderTrend(rows []*row) string {
	var b strings.Builder
	b.WriteString("Difficulty of the proposed questions over training (self-play rows, from `metrics.jsonl`): the mean per step ")
	b.WriteString("on the first and on the last third of the steps, averaged over seeds; Δ is last minus first, with its range over seeds. ")
	b.WriteString("Hops and searches count the steps with at least one valid question, solver accuracy the steps with solver rollouts.\n\n")
	var lines []string
	for _, r := range rows {
		if !r.ran() || !selfPlayRow(r) {
			continue
		}
		cells := []string{fmt.Sprintf("`%s`", r.Name), strconv.Itoa(len(r.Used)), thirdsLabel(r.Used)}
		for _, k := range trendKeys {
			cells = append(cells, trendCell(r.Used, k.Key, k.Denominator))
		}
		lines = append(lines, "| "+strings.Join(cells, " | ")+" |\n")
	}
	if len(lines) == 0 {
		b.WriteString("No self-play row has run.\n")
		return b.String()
	}
	b.WriteString("| row | seeds | steps (first / last third) |")
	for _, k := range trendKeys {
		b.WriteString(" " + k.Label + " |")
	}
	b.WriteString("\n|---|---:|---|---|---|---|\n")
	for _, l := range lines {
		b.WriteString(l)
	}
	return b.String()
}

// splitMarkers returns the offsets just after the begin marker and at the
// start of the end marker.
func splitMarkers(docPath string, doc []byte) (int, int, error) {
	b := bytes.Index(doc, []byte(beginMarker))
	e := bytes.Index(doc, []byte(endMarker))
	switch {
	case b < 0 || e < 0:
		return 0, 0, fmt.Errorf("%s: missing the marker lines %s and %s", docPath, beginMarker, endMarker)
	case bytes.Count(doc, []byte(beginMarker)) > 1 || bytes.Count(doc, []byte(endMarker)) > 1:
		return 0, 0, fmt.Errorf("%s: the results markers appear more than once", docPath)
	case e < b:
		return 0, 0, fmt.Errorf("%s: %s comes before %s", docPath, endMarker, beginMarker)
	}
	return b + len(beginMarker), e, nil
}

// replaceBlock puts block between the markers, leaving the rest untouched.
func replaceBlock(docPath string, doc []byte, block string) ([]byte, error) {
	start, end, err := splitMarkers(docPath, doc)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(doc[:start])
	out.WriteString("\n")
	out.WriteString(block)
	out.WriteString("\n")
	out.Write(doc[end:])
	return out.Bytes(), nil
}

// writeFileAtomic writes through a temporary file in the same directory
// renamed into place, so readers never see a partial file.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
