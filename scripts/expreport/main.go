// Command expreport renders the results of the training-recipe comparison
// into docs/experiments.md: a results table at each row's last benchmark
// evaluation, a sentence comparing the 2–4-hop gains of self-play and
// supervised RL, and SVG curves written next to the document.
//
//	go run ./scripts/expreport --runs DIR --doc docs/experiments.md --plots docs/experiments
//
// DIR holds one `ssp train` run directory per row. Only the text between
// the lines <!-- results:begin --> and <!-- results:end --> is replaced.
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
	runs := flag.String("runs", "", "directory holding one training run directory per row")
	doc := flag.String("doc", "docs/experiments.md", "markdown file to update between the results markers")
	plots := flag.String("plots", "", "directory for the SVG curves (default: the doc path without .md)")
	flag.Parse()
	if *runs == "" {
		fmt.Fprintln(os.Stderr, "expreport: --runs is required")
		flag.Usage()
		os.Exit(2)
	}
	if *plots == "" {
		*plots = strings.TrimSuffix(*doc, filepath.Ext(*doc))
	}
	if err := generate(*runs, *doc, *plots, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "expreport:", err)
		os.Exit(1)
	}
}

// generate reads the runs, writes the SVG curves into plotsDir and replaces
// the results block of docPath. Warnings go to warn.
func generate(runsDir, docPath, plotsDir string, warn io.Writer) error {
	// Fail on a document without markers before writing anything.
	docText, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	if _, _, err := splitMarkers(docPath, docText); err != nil {
		return err
	}
	rows, err := loadRows(runsDir)
	if err != nil {
		return err
	}
	base, baseRow := baseModel(rows, warn)
	rel, err := filepath.Rel(filepath.Dir(docPath), plotsDir)
	if err != nil {
		return fmt.Errorf("plots directory %s relative to %s: %w", plotsDir, docPath, err)
	}
	svgs := renderPlots(rows)
	if err := os.MkdirAll(plotsDir, 0o755); err != nil {
		return err
	}
	for _, p := range svgs {
		if err := writeFileAtomic(filepath.Join(plotsDir, p.File), p.SVG); err != nil {
			return err
		}
	}
	block := renderResults(rows, base, baseRow, filepath.ToSlash(rel), svgs)
	updated, err := replaceBlock(docPath, docText, block)
	if err != nil {
		return err
	}
	return writeFileAtomic(docPath, updated)
}

// row is one training recipe: a run directory under --runs.
type row struct {
	Name, Label string
	Ran         bool          // has metrics.jsonl and at least one evaluation
	Steps       []stepValues  // metrics.jsonl, by step
	Evals       []evalAtStep  // eval/step-N/metrics.json, by step
	color       string        // fixed per row across all plots
	trainSecs   float64       // sum of step_seconds
	lastEval    *eval.Metrics // at the last evaluated step
	lastStep    int
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

// loadRows reads the known rows in order, then any other subdirectory by name.
func loadRows(runsDir string) ([]*row, error) {
	entries, err := os.ReadDir(runsDir)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	var rows []*row
	for _, k := range knownRows {
		known[k.Name] = true
		rows = append(rows, &row{Name: k.Name, Label: k.Label})
	}
	for _, e := range entries { // ReadDir sorts by name
		if e.IsDir() && !known[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			rows = append(rows, &row{Name: e.Name(), Label: e.Name()})
		}
	}
	for i, r := range rows {
		r.color = palette[i%len(palette)]
		if err := r.load(filepath.Join(runsDir, r.Name)); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// load fills the row from its run directory; a directory without
// metrics.jsonl or without evaluations leaves the row not run.
func (r *row) load(dir string) error {
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

// baseModel returns the step-0 evaluation of the first row that has one
// (all rows start from the same model) and the row it came from; it warns
// when another row's step-0 disagrees.
func baseModel(rows []*row, warn io.Writer) (*eval.Metrics, *row) {
	var base *eval.Metrics
	var from *row
	for _, r := range rows {
		if !r.Ran || r.Evals[0].Step != 0 {
			continue
		}
		m := r.Evals[0].Metrics
		if base == nil {
			base, from = m, r
			continue
		}
		if math.Abs(m.Overall.EM-base.Overall.EM) > 1e-9 {
			fmt.Fprintf(warn, "expreport: warning: base model of row %q has EM %.6f at step 0, row %q has %.6f; using %q\n",
				r.Name, m.Overall.EM, from.Name, base.Overall.EM, from.Name)
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

// renderResults writes the markdown between the markers.
func renderResults(rows []*row, base *eval.Metrics, baseRow *row, plotsRel string, svgs []plot) string {
	var b strings.Builder
	b.WriteString("<!-- generated by `go run ./scripts/expreport`; edits inside the markers are overwritten -->\n\n")
	b.WriteString("| row | step | EM | EM 1-hop | EM 2-hop | EM 3-hop | EM 4-hop | F1 | avg searches | Δ EM (2–4 hops) | training seconds |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	baseMulti := math.NaN()
	if base != nil {
		baseMulti = multiHopEM(base)
		fmt.Fprintf(&b, "| base model (step 0 of `%s`) | 0 | %s | — | — |\n", baseRow.Name, metricCells(base))
	} else {
		b.WriteString("| base model | not run | — | — | — | — | — | — | — | — | — |\n")
	}
	for _, r := range rows {
		name := fmt.Sprintf("`%s` — %s", r.Name, r.Label)
		if r.Label == r.Name {
			name = fmt.Sprintf("`%s`", r.Name)
		}
		if !r.Ran {
			fmt.Fprintf(&b, "| %s | not run | — | — | — | — | — | — | — | — | — |\n", name)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.0f |\n", name, r.lastStep, metricCells(r.lastEval),
			signedPoints(multiHopEM(r.lastEval)-baseMulti), r.trainSecs)
	}
	b.WriteString("\nEM and F1 are percentage points on the held-out benchmark at each row's last evaluated step; ")
	b.WriteString("Δ EM (2–4 hops) is the mean EM of the 2-, 3- and 4-hop groups minus the base model's.\n\n")
	b.WriteString(gainSentence(rows, baseMulti))
	b.WriteString("\n")
	for _, p := range svgs {
		fmt.Fprintf(&b, "\n![%s](%s)\n", p.Title, path.Join(plotsRel, p.File))
	}
	return b.String()
}

// metricCells are the EM, per-hop EM, F1 and average-searches cells.
func metricCells(m *eval.Metrics) string {
	cells := []string{points(m.Overall.EM)}
	for _, h := range []string{"1", "2", "3", "4"} {
		cells = append(cells, points(hopEM(m, h)))
	}
	cells = append(cells, points(m.Overall.F1), strconv.FormatFloat(m.Overall.AvgSearches, 'f', 2, 64))
	return strings.Join(cells, " | ")
}

// gainSentence compares the 2–4-hop gains of SSP and supervised RL.
func gainSentence(rows []*row, baseMulti float64) string {
	gain := map[string]float64{}
	for _, r := range rows {
		if r.Ran {
			gain[r.Name] = multiHopEM(r.lastEval) - baseMulti
		}
	}
	ssp, sspOK := gain["ssp"]
	sup, supOK := gain["supervised"]
	switch {
	case math.IsNaN(baseMulti):
		return "The 2–4-hop gains cannot be computed: there is no base-model evaluation with 2–4-hop groups."
	case !sspOK || math.IsNaN(ssp):
		return "The 2–4-hop gain of SSP cannot be computed: the `ssp` row has not run or has no 2–4-hop groups."
	case !supOK || math.IsNaN(sup):
		return fmt.Sprintf("SSP gains %s points of 2–4-hop EM over the base model; the supervised row has not run, so the ratio to its gain is undefined.",
			signedPoints(ssp))
	case sup <= 1e-9: // not positive beyond rounding noise of the hop means
		return fmt.Sprintf("SSP gains %s points of 2–4-hop EM over the base model; supervised RL gains %s points, so the ratio to the supervised gain is undefined.",
			signedPoints(ssp), signedPoints(sup))
	default:
		return fmt.Sprintf("SSP gains %s points of 2–4-hop EM over the base model, %.1f%% of the %s points gained by supervised RL.",
			signedPoints(ssp), 100*ssp/sup, signedPoints(sup))
	}
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
