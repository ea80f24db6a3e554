package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/world"
)

const docBefore = "# Experiments\n\nIntro text — kept as is.\n\n" + beginMarker + "\nold results\n" + endMarker + "\n\n## Discussion\n\ntrailing text\n"

// evalMetrics is a metrics.json with the given overall EM, F1, average
// searches and per-hop EM (hops 1..4; nil for no hop groups).
func evalMetrics(em, f1, searches float64, hops []float64) eval.Metrics {
	m := eval.Metrics{Examples: 200, Overall: eval.Group{N: 200, EM: em, F1: f1, AvgSearches: searches}}
	if hops != nil {
		m.ByHops = map[string]eval.Group{}
		for i, h := range hops {
			m.ByHops[string(rune('1'+i))] = eval.Group{N: 50, EM: h}
		}
	}
	return m
}

func writeRun(t *testing.T, dir string, metricsLines []string, evals map[int]eval.Metrics) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if metricsLines != nil {
		if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(strings.Join(metricsLines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for step, m := range evals {
		d := filepath.Join(dir, "eval", "step-"+strconv.Itoa(step))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "metrics.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fixture builds a runs directory: ssp and supervised ran to step 3,
// no-rag is missing, frozen-proposer has metrics but no evaluation, and an
// unknown row "extra" has only a step-0 evaluation that disagrees with the
// others' base model.
func fixture(t *testing.T) (runs, doc, plots string) {
	t.Helper()
	root := t.TempDir()
	runs = filepath.Join(root, "runs")
	base := evalMetrics(0.2, 0.3, 1.5, []float64{0.5, 0.2, 0.1, 0.0})
	writeRun(t, filepath.Join(runs, "ssp"), []string{
		`{"step":1,"proposer_reward":0.1,"solver_reward":0.5,"valid_question_rate":0.5,"valid_question_hops":2,"valid_question_searches":3,"step_seconds":10}`,
		`{"step":2,"proposer_reward":null,"solver_reward":0.5,"valid_question_rate":0.6,"valid_question_hops":2.5,"valid_question_searches":null,"step_seconds":20}`,
		`{"step":3,"proposer_reward":0.3,"solver_reward":0.6,"valid_question_rate":null,"valid_question_hops":3,"valid_question_searches":4,"step_seconds":null,"eval/em":0.3}`,
	}, map[int]eval.Metrics{
		0: base,
		3: evalMetrics(0.3, 0.4, 2.25, []float64{0.6, 0.3, 0.2, 0.1}),
	})
	writeRun(t, filepath.Join(runs, "supervised"), []string{
		`{"step":1,"proposer_reward":0,"valid_question_rate":null,"valid_question_hops":0,"valid_question_searches":0,"step_seconds":5}`,
		`{"step":2,"proposer_reward":0,"valid_question_rate":null,"valid_question_hops":0,"valid_question_searches":0,"step_seconds":5}`,
		`{"step":3,"proposer_reward":null,"valid_question_rate":0,"valid_question_hops":0,"valid_question_searches":0,"step_seconds":5}`,
	}, map[int]eval.Metrics{
		0: base,
		3: evalMetrics(0.35, 0.45, 2, []float64{0.7, 0.4, 0.3, 0.2}),
	})
	writeRun(t, filepath.Join(runs, "frozen-proposer"), []string{`{"step":1,"proposer_reward":0.2,"step_seconds":1}`}, nil)
	writeRun(t, filepath.Join(runs, "extra"), []string{`{"step":0,"step_seconds":0}`},
		map[int]eval.Metrics{0: evalMetrics(0.25, 0.3, 1, nil)})
	doc = filepath.Join(root, "docs", "experiments.md")
	plots = filepath.Join(root, "docs", "experiments")
	if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, []byte(docBefore), 0o644); err != nil {
		t.Fatal(err)
	}
	return runs, doc, plots
}

func TestGenerate(t *testing.T) {
	runs, doc, plots := fixture(t)
	var warn bytes.Buffer
	if err := generate(runs, doc, plots, "", &warn); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warn.String(), `run "extra"`) {
		t.Errorf("no warning about the differing base model of extra; stderr:\n%s", warn.String())
	}
	got, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(got)

	// Text outside the markers is untouched.
	before, _, _ := strings.Cut(docBefore, beginMarker)
	_, after, _ := strings.Cut(docBefore, endMarker)
	if !strings.HasPrefix(text, before+beginMarker+"\n") || !strings.HasSuffix(text, "\n"+endMarker+after) {
		t.Errorf("text outside the markers changed:\n%s", text)
	}
	if strings.Contains(text, "old results") {
		t.Error("old block kept")
	}

	// Hand-computed: base 2–4-hop EM = mean(0.2, 0.1, 0.0) = 0.1; ssp
	// mean(0.3, 0.2, 0.1) = 0.2 → +10.0; supervised mean(0.4, 0.3, 0.2) = 0.3 → +20.0.
	wantLines := []string{
		"| base model (step 0 of `ssp`) | 1 | 0 | 20.0 | 50.0 | 20.0 | 10.0 | 0.0 | 30.0 | 1.50 | — | — | — |",
		"| `ssp` — SSP self-play, no labels | 1 | 3 | 30.0 | 60.0 | 30.0 | 20.0 | 10.0 | 40.0 | 2.25 | +10.0 | 30 | — |",
		"| `supervised` — supervised RL on train_qa | 1 | 3 | 35.0 | 70.0 | 40.0 | 30.0 | 20.0 | 45.0 | 2.00 | +20.0 | 15 | — |",
		"| `no-rag` — SSP without RAG verification | 0 | not run | — | — | — | — | — | — | — | — | — | — |",
		"| `frozen-proposer` — SSP, proposer not trained | 0 | not run | — | — | — | — | — | — | — | — | — | — |",
		"| `extra` | 1 | 0 | 25.0 | — | — | — | — | 30.0 | 1.00 | — | 0 | — |",
		"SSP gains +10.0 points (1 seed) of 2–4-hop EM over the base model, 50.0% of the +20.0 points (1 seed) gained by supervised RL (the ratio of the means).",
		"| `ssp` | 1 | 1 / 3 of 3 | 2.00 → 3.00 (Δ +1.00) | 3.00 → 4.00 (Δ +1.00) | — |",
	}
	last := -1
	for _, w := range wantLines {
		i := strings.Index(text, w+"\n")
		if i < 0 {
			t.Errorf("missing line %q in\n%s", w, text)
			continue
		}
		if i < last {
			t.Errorf("line %q out of order", w)
		}
		last = i
	}

	// One polyline per drawn series; null values are skipped.
	wantPolylines := map[string]int{
		"benchmark-em.svg":           3, // ssp, supervised, extra
		"benchmark-em-multihop.svg":  2, // extra has no hop groups
		"proposer-reward.svg":        1, // supervised is all 0/null
		"valid-question-rate.svg":    1,
		"proposed-hops-searches.svg": 2, // hops and searches of ssp
	}
	for file, want := range wantPolylines {
		if !strings.Contains(text, "](experiments/"+file+")") {
			t.Errorf("doc does not reference experiments/%s", file)
		}
		data, err := os.ReadFile(filepath.Join(plots, file))
		if err != nil {
			t.Fatal(err)
		}
		lines := polylines(t, file, data)
		if len(lines) != want {
			t.Errorf("%s: %d polylines, want %d", file, len(lines), want)
		}
		if file == "proposer-reward.svg" && len(lines) == 1 {
			if n := len(strings.Fields(lines[0])); n != 2 {
				t.Errorf("proposer-reward: %d points, want 2 (one null skipped)", n)
			}
		}
	}
}

// polylines parses data as XML and returns the points attribute of each polyline.
func polylines(t *testing.T, name string, data []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var out []string
	var texts int
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: not XML: %v", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "polyline":
				for _, a := range se.Attr {
					if a.Name.Local == "points" {
						out = append(out, a.Value)
					}
				}
			case "text":
				texts++
			}
		}
	}
	if texts < 4 {
		t.Errorf("%s: %d text elements; want a title, axis labels and tick labels", name, texts)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	t.Run("single runs", func(t *testing.T) { testDeterministic(t, fixture) })
	t.Run("seeds", func(t *testing.T) { testDeterministic(t, seededFixture) })
}

func testDeterministic(t *testing.T, fixture func(*testing.T) (string, string, string)) {
	runs, doc, plots := fixture(t)
	snapshot := func() map[string][]byte {
		if err := generate(runs, doc, plots, "", io.Discard); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		files[doc] = b
		entries, err := os.ReadDir(plots)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(plots, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = b
		}
		return files
	}
	first, second := snapshot(), snapshot()
	if len(first) != 6 || len(second) != len(first) {
		t.Fatalf("got %d then %d files, want the doc and 5 plots (no temporary files left)", len(first), len(second))
	}
	for name, b := range first {
		if !bytes.Equal(b, second[name]) {
			t.Errorf("%s differs between two runs", name)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, runs, doc string)
		want  string
	}{
		{"missing markers", func(t *testing.T, runs, doc string) {
			os.WriteFile(doc, []byte("# Experiments\n\nno markers\n"), 0o644)
		}, "missing the marker lines"},
		{"markers reversed", func(t *testing.T, runs, doc string) {
			os.WriteFile(doc, []byte(endMarker+"\n"+beginMarker+"\n"), 0o644)
		}, "comes before"},
		{"malformed metrics.jsonl", func(t *testing.T, runs, doc string) {
			p := filepath.Join(runs, "ssp", "metrics.jsonl")
			os.WriteFile(p, []byte("{\"step\":1}\n{\"step\":2,\n"), 0o644)
		}, filepath.Join("ssp", "metrics.jsonl") + ":2: malformed JSON"},
		{"malformed eval metrics.json", func(t *testing.T, runs, doc string) {
			os.WriteFile(filepath.Join(runs, "supervised", "eval", "step-3", "metrics.json"), []byte("{\"overall\":"), 0o644)
		}, filepath.Join("supervised", "eval", "step-3", "metrics.json") + ": malformed JSON"},
		{"malformed wall_seconds", func(t *testing.T, runs, doc string) {
			os.WriteFile(filepath.Join(runs, "ssp", "wall_seconds"), []byte("12 minutes\n"), 0o644)
		}, filepath.Join("ssp", "wall_seconds") + `: not a number of seconds: "12 minutes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs, doc, plots := fixture(t)
			tc.setup(t, runs, doc)
			before, _ := os.ReadFile(doc)
			err := generate(runs, doc, plots, "", io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			after, _ := os.ReadFile(doc)
			if !bytes.Equal(before, after) {
				t.Error("doc changed despite the error")
			}
		})
	}
}

func TestGainSentence(t *testing.T) {
	ran := func(name string, multi ...float64) *row {
		r := &row{Name: name}
		for _, v := range multi {
			m := evalMetrics(0, 0, 0, []float64{0, v, v, v})
			r.Used = append(r.Used, &run{Ran: true, lastEval: &m})
		}
		return r
	}
	for _, tc := range []struct {
		name string
		rows []*row
		want string
	}{
		{"ratio", []*row{ran("ssp", 0.25), ran("supervised", 0.5)},
			"SSP gains +15.0 points (1 seed) of 2–4-hop EM over the base model, 37.5% of the +40.0 points (1 seed) gained by supervised RL (the ratio of the means)."},
		// Means over seeds: ssp gains +5, +15, +25 (mean +15), supervised +30 and +50 (mean +40).
		{"ratio of means", []*row{ran("ssp", 0.15, 0.25, 0.35), ran("supervised", 0.4, 0.6)},
			"SSP gains +15.0 points (mean of 3 seeds, range +5.0 to +25.0) of 2–4-hop EM over the base model, " +
				"37.5% of the +40.0 points (mean of 2 seeds, range +30.0 to +50.0) gained by supervised RL (the ratio of the means)."},
		{"supervised lost", []*row{ran("ssp", 0.25), ran("supervised", 0.05)},
			"SSP gains +15.0 points (1 seed) of 2–4-hop EM over the base model; supervised RL gains -5.0 points (1 seed), so the ratio to the supervised gain is undefined."},
		{"supervised flat on average", []*row{ran("ssp", 0.05), ran("supervised", 0.0, 0.2)},
			"SSP gains -5.0 points (1 seed) of 2–4-hop EM over the base model; supervised RL gains +0.0 points (mean of 2 seeds, range -10.0 to +10.0), so the ratio to the supervised gain is undefined."},
		{"supervised missing", []*row{ran("ssp", 0.25), {Name: "supervised"}},
			"SSP gains +15.0 points (1 seed) of 2–4-hop EM over the base model; the supervised row has not run, so the ratio to its gain is undefined."},
		{"ssp missing", []*row{{Name: "ssp"}, ran("supervised", 0.5)},
			"The 2–4-hop gain of SSP cannot be computed: the `ssp` row has not run or has no 2–4-hop groups."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gainSentence(tc.rows, 0.1); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi  float64
		integer bool
		want    string
		dec     int
	}{
		{0, 500, true, "0 100 200 300 400 500", 0},
		{0, 3, true, "0 1 2 3", 0},
		{5, 5, true, "4 5 6", 0},
		{0, 0.37, false, "0 0.1 0.2 0.3 0.4", 1},
		{-0.2, 0.3, false, "-0.2 -0.1 0 0.1 0.2 0.3", 1},
		{0, 0, false, "0 0.2 0.4 0.6 0.8 1", 1},
		{0, 42, false, "0 10 20 30 40 50", 0},
	} {
		ticks, dec := niceTicks(tc.lo, tc.hi, 5, tc.integer)
		var got []string
		for _, v := range ticks {
			got = append(got, strconv.FormatFloat(v, 'f', -1, 64))
		}
		if strings.Join(got, " ") != tc.want || dec != tc.dec {
			t.Errorf("niceTicks(%v, %v): %v (%d decimals), want %s (%d)", tc.lo, tc.hi, got, dec, tc.want, tc.dec)
		}
	}
	// A chart without data is still a valid SVG with axes.
	polylines(t, "empty", drawChart(chart{Title: "t", XLabel: "x", YLabel: "y"}))
}

// stepLine is a metrics.jsonl line of a self-play step.
func stepLine(step, valid, hops, searches, accuracy, rollouts, seconds float64) string {
	b, _ := json.Marshal(map[string]float64{
		"step": step, "proposer_reward": 0.5, "valid_question_rate": 0.5, "questions_valid": valid,
		"valid_question_hops": hops, "valid_question_searches": searches,
		"solver_accuracy": accuracy, "solver_rollouts": rollouts, "step_seconds": seconds,
	})
	return string(b)
}

// seededFixture builds a runs directory of seeded runs: ssp-s1, ssp-s2 and
// ssp-s10 (6 steps, evaluated at 2 and 4; s1 also at step 0, the base), an
// older ssp directory without a seed, supervised-s1 and -s2 finished and
// supervised-s3 stopped at step 2, and no-rag-s1 alone.
func seededFixture(t *testing.T) (runs, doc, plots string) {
	t.Helper()
	root := t.TempDir()
	runs = filepath.Join(root, "runs")
	base := evalMetrics(0.2, 0.3, 1.5, []float64{0.5, 0.2, 0.1, 0.0})
	mid := evalMetrics(0.1, 0.1, 1, []float64{0.1, 0.1, 0.1, 0.1})
	// Difficulty per run: steps 1–2 and 5–6 are the first and last thirds;
	// a step without valid questions (or rollouts) logs 0 and is skipped.
	middle := func(n float64) []string {
		return []string{stepLine(3, 1, 9, 9, 0.9, 4, n), stepLine(4, 1, 9, 9, 0.9, 4, n)}
	}
	ssp := []struct {
		name      string
		lines     []string
		last      eval.Metrics
		wall      string
		withBase  bool
		trainSecs float64
	}{
		{"ssp-s1", append(append([]string{stepLine(1, 0, 0, 0, 0.5, 4, 10), stepLine(2, 2, 2, 3, 0.5, 4, 10)}, middle(20)...),
			stepLine(5, 2, 3, 4, 0.25, 4, 20), stepLine(6, 2, 3, 4, 0.25, 4, 20)),
			evalMetrics(0.3, 0.4, 2, []float64{0.6, 0.3, 0.2, 0.1}), "600\n", true, 100},
		{"ssp-s2", append(append([]string{stepLine(1, 1, 2, 3, 0.5, 4, 20), stepLine(2, 1, 2, 3, 0.5, 4, 20)}, middle(40)...),
			stepLine(5, 1, 4, 6, 0.5, 4, 40), stepLine(6, 1, 4, 6, 0, 0, 40)),
			evalMetrics(0.4, 0.5, 3, []float64{0.7, 0.4, 0.3, 0.2}), "1140", false, 200},
		{"ssp-s10", append(append([]string{stepLine(1, 1, 2, 3, 0.5, 4, 30), stepLine(2, 1, 2, 3, 0.5, 4, 30)}, middle(60)...),
			stepLine(5, 1, 2, 3, 0.75, 4, 60), stepLine(6, 1, 2, 3, 0.75, 4, 60)),
			evalMetrics(0.2, 0.3, 1, []float64{0.5, 0.2, 0.1, 0.0}), "", false, 300},
	}
	for _, r := range ssp {
		evals := map[int]eval.Metrics{2: mid, 4: r.last}
		if r.withBase {
			evals[0] = base
		}
		dir := filepath.Join(runs, r.name)
		writeRun(t, dir, r.lines, evals)
		if r.wall != "" {
			if err := os.WriteFile(filepath.Join(dir, "wall_seconds"), []byte(r.wall), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An experiment run before seeds: left out, its row has seeded runs.
	writeRun(t, filepath.Join(runs, "ssp"), []string{stepLine(1, 1, 7, 7, 1, 4, 1000)},
		map[int]eval.Metrics{4: evalMetrics(0.9, 0.9, 9, []float64{0.9, 0.9, 0.9, 0.9})})
	supervised := []string{`{"step":1,"proposer_reward":0,"valid_question_hops":0,"step_seconds":5}`}
	writeRun(t, filepath.Join(runs, "supervised-s1"), supervised,
		map[int]eval.Metrics{4: evalMetrics(0.5, 0.6, 2, []float64{0.8, 0.5, 0.4, 0.3})})
	writeRun(t, filepath.Join(runs, "supervised-s2"), supervised,
		map[int]eval.Metrics{4: evalMetrics(0.3, 0.4, 2, []float64{0.6, 0.3, 0.2, 0.1})})
	// Stopped at step 2: left out of the row's results.
	writeRun(t, filepath.Join(runs, "supervised-s3"), supervised,
		map[int]eval.Metrics{2: evalMetrics(0.9, 0.9, 9, []float64{0.9, 0.9, 0.9, 0.9})})
	writeRun(t, filepath.Join(runs, "no-rag-s1"), []string{stepLine(1, 1, 1, 1, 0, 4, 7), stepLine(2, 1, 5, 5, 0, 4, 7), stepLine(3, 1, 2, 3, 0.5, 4, 7)},
		map[int]eval.Metrics{4: evalMetrics(0.25, 0.3, 1, []float64{0.5, 0.2, 0.1, 0.0})})
	doc = filepath.Join(root, "docs", "experiments.md")
	plots = filepath.Join(root, "docs", "experiments")
	if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, []byte(docBefore), 0o644); err != nil {
		t.Fatal(err)
	}
	return runs, doc, plots
}

func TestSeedGrouping(t *testing.T) {
	runs, _, _ := seededFixture(t)
	var warn bytes.Buffer
	rows, err := loadRows(runs, &warn)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		var names []string
		for _, ru := range r.Used {
			names = append(names, ru.Name)
		}
		got = append(got, r.Name+": "+strings.Join(names, " "))
	}
	// Known rows first, seeds in numeric order, the plain ssp directory and
	// the stopped supervised-s3 left out.
	want := []string{"ssp: ssp-s1 ssp-s2 ssp-s10", "supervised: supervised-s1 supervised-s2", "no-rag: no-rag-s1", "frozen-proposer: "}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range []string{`row "ssp" has seeded runs; the run directory "ssp" without a seed is left out`,
		`run "supervised-s3" was last evaluated at step 2, the other runs of row "supervised" at step 4`} {
		if !strings.Contains(warn.String(), w) {
			t.Errorf("no warning %q; got:\n%s", w, warn.String())
		}
	}
	if base, from := baseModel(rows, io.Discard); base == nil || from.Name != "ssp-s1" {
		t.Errorf("base model from %v, want ssp-s1", from)
	}
}

func TestSeedMeansAndRanges(t *testing.T) {
	runs, doc, plots := seededFixture(t)
	if err := generate(runs, doc, plots, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(got)
	// Hand-computed over ssp-s1, -s2, -s10: EM 30, 40, 20; 2–4-hop EM 20,
	// 30, 10 against the base's 10; step seconds 100, 200, 300; wall
	// seconds 600 and 1140 (s10 has none) → 19.0 minutes. Supervised: 2–4-hop
	// EM 40 and 20 → +20 on average; ratio 10/20.
	wantLines := []string{
		"| base model (step 0 of `ssp-s1`) | 1 | 0 | 20.0 | 50.0 | 20.0 | 10.0 | 0.0 | 30.0 | 1.50 | — | — | — |",
		"| `ssp` — SSP self-play, no labels | 3 | 4 | 30.0 (20.0–40.0) | 60.0 (50.0–70.0) | 30.0 (20.0–40.0) | 20.0 (10.0–30.0) | " +
			"10.0 (0.0–20.0) | 40.0 (30.0–50.0) | 2.00 (1.00–3.00) | +10.0 (+0.0 to +20.0) | 200 (100–300) | 19.0 |",
		"| `supervised` — supervised RL on train_qa | 2 | 4 | 40.0 (30.0–50.0) | 70.0 (60.0–80.0) | 40.0 (30.0–50.0) | 30.0 (20.0–40.0) | " +
			"20.0 (10.0–30.0) | 50.0 (40.0–60.0) | 2.00 (2.00–2.00) | +20.0 (+10.0 to +30.0) | 5 (5–5) | — |",
		"| `no-rag` — SSP without RAG verification | 1 | 4 | 25.0 | 50.0 | 20.0 | 10.0 | 0.0 | 30.0 | 1.00 | +0.0 | 21 | — |",
		"| `frozen-proposer` — SSP, proposer not trained | 0 | not run |",
		"SSP gains +10.0 points (mean of 3 seeds, range +0.0 to +20.0) of 2–4-hop EM over the base model, " +
			"50.0% of the +20.0 points (mean of 2 seeds, range +10.0 to +30.0) gained by supervised RL (the ratio of the means).",
	}
	last := -1
	for _, w := range wantLines {
		i := strings.Index(text, w)
		if i < 0 {
			t.Errorf("missing %q in\n%s", w, text)
			continue
		}
		if i < last {
			t.Errorf("%q out of order", w)
		}
		last = i
	}

	// Curves: a thin one per seed and a bold mean for ssp (3 + 1) and
	// supervised (2 + 1), no-rag's own curve bold.
	data, err := os.ReadFile(filepath.Join(plots, "benchmark-em.svg"))
	if err != nil {
		t.Fatal(err)
	}
	var thin, bold int
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "<polyline") && strings.Contains(l, `stroke-width="1"`):
			thin++
		case strings.HasPrefix(l, "<polyline") && strings.Contains(l, `stroke-width="2"`):
			bold++
		}
	}
	if thin != 5 || bold != 3 {
		t.Errorf("benchmark-em.svg: %d thin and %d bold curves, want 5 and 3", thin, bold)
	}
	for _, w := range []string{">ssp (mean of 3)</text>", ">supervised (mean of 2)</text>", ">no-rag</text>"} {
		if !strings.Contains(string(data), w) {
			t.Errorf("benchmark-em.svg: no legend entry %s", w)
		}
	}
	if strings.Contains(string(data), ">ssp ssp-s1</text>") {
		t.Error("benchmark-em.svg: a seed's thin curve has a legend entry")
	}
}

func TestDifficultyTrend(t *testing.T) {
	runs, _, _ := seededFixture(t)
	rows, err := loadRows(runs, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	text := renderTrend(rows)
	// Hops, first → last third: s1 2 → 3 (step 1 has no valid question),
	// s2 2 → 4, s10 2 → 2. Searches: 3 → 4, 3 → 6, 3 → 3. Solver accuracy:
	// 0.5 → 0.25, 0.5 → 0.5 (step 6 has no rollouts), 0.5 → 0.75.
	for _, w := range []string{
		"| `ssp` | 3 | 1–2 / 5–6 of 6 | 2.00 → 3.00 (Δ +1.00, range +0.00 to +2.00) | 3.00 → 4.33 (Δ +1.33, range +0.00 to +3.00) | " +
			"0.50 → 0.50 (Δ +0.00, range -0.25 to +0.25) |\n",
		"| `no-rag` | 1 | 1 / 3 of 3 | 1.00 → 2.00 (Δ +1.00) | 1.00 → 3.00 (Δ +2.00) | 0.00 → 0.50 (Δ +0.50) |\n",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in\n%s", w, text)
		}
	}
	if strings.Contains(text, "`supervised`") {
		t.Errorf("supervised RL has no proposer, yet is in the trend table:\n%s", text)
	}
	if got := renderTrend(nil); !strings.Contains(got, "No self-play row has run.") {
		t.Errorf("without self-play rows: %q", got)
	}
}

func TestSummarizeAndMeanCurve(t *testing.T) {
	st := summarize([]float64{0.3, math.NaN(), 0.1, 0.2})
	if st.N != 3 || math.Abs(st.Mean-0.2) > 1e-12 || st.Min != 0.1 || st.Max != 0.3 {
		t.Errorf("summarize: %+v, want mean 0.2 of 3 values in [0.1, 0.3]", st)
	}
	if got := withRange(st, points); got != "20.0 (10.0–30.0)" {
		t.Errorf("withRange: %q", got)
	}
	if got := withRange(summarize([]float64{-0.05, 0.05}), signedPoints); got != "+0.0 (-5.0 to +5.0)" {
		t.Errorf("withRange of signed values: %q", got)
	}
	if got := withRange(summarize([]float64{math.NaN()}), points); got != "—" {
		t.Errorf("withRange without values: %q", got)
	}
	got := meanCurve([][]xy{{{X: 0, Y: 1}, {X: 2, Y: 2}, {X: 4, Y: 3}}, {{X: 4, Y: 5}, {X: 2, Y: 4}}})
	if want := []xy{{X: 2, Y: 3}, {X: 4, Y: 4}}; !slices.Equal(got, want) {
		t.Errorf("meanCurve: %v, want %v (only the steps every curve has)", got, want)
	}
}

// TestWorldGrades grades a self-play run that played on a generated world
// (found from its provenance.jsonl): a right 2-link valid question in the
// first third of its steps, a wrong valid one in the last, a right 1-link
// one the RAG check rejected; the wrong one's proposer searched a name no
// result had shown it. Mutations checked: swapping the first and last
// thirds, counting rejected questions as valid, swapping the right and
// wrong RAG pass rates, and swapping the grounded and other columns, all
// fail the row.
func TestWorldGrades(t *testing.T) {
	runs, doc, plots := fixture(t)
	worldDir := filepath.Join(t.TempDir(), "world")
	g, err := world.Generate(3, world.Sizes["tiny"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write(worldDir); err != nil {
		t.Fatal(err)
	}
	var two, one world.Question
	for _, q := range g.Derive().Benchmark {
		switch {
		case q.Hops == 2 && two.Question == "":
			two = q
		case q.Hops == 1 && one.Question == "":
			one = q
		}
	}
	run := filepath.Join(runs, "ssp")
	prov := `{"seeds":"` + filepath.Join(worldDir, "seeds.jsonl") + `"}` + "\n"
	if err := os.WriteFile(filepath.Join(run, "provenance.jsonl"), []byte(prov), 0o644); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	rag := func(pass bool) []selfplay.Verdict {
		return []selfplay.Verdict{{Filter: selfplay.FilterRAG, Pass: pass}}
	}
	steps := map[int][]selfplay.RolloutRecord{
		1: {{Role: "proposer", Question: two.Question, Answers: two.Answers, Valid: &yes, Verdicts: rag(true)}},
		2: {{Role: "proposer", Question: one.Question, Answers: one.Answers, Valid: &no, Verdicts: rag(false)}},
		// Its proposer's second search named what no result had shown it.
		3: {{Role: "proposer", Question: two.Question, Answers: one.Answers, Valid: &yes, Verdicts: rag(true),
			Queries:  []string{"first", "made up"},
			Response: "<search> first </search>\n\n<information>Doc 1(Title: first) shown</information>\n\n<search> made up </search>"}},
	}
	writeRollouts(t, run, "game:\n  solver_rollouts: 2\n", steps)
	if err := generate(runs, doc, plots, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(doc)
	want := "| `ssp` | 1 | 2 | 1 / 1 / 0 | 50 % | 100 % (1 of 1) / 0 % (0 of 1) | 50 % (1 of 2) / 100 % (1 of 1) | 2.00 → — | 1 of 2 |"
	if !strings.Contains(string(out), want) {
		t.Errorf("no row %q in:\n%s", want, out)
	}
	// A named world that is not one is an error.
	if err := generate(runs, doc, plots, t.TempDir(), io.Discard); err == nil {
		t.Error("a --world without world.json was accepted")
	}
}

// writeRollouts gives the run directory dir a config.yaml and a rollouts
// file per step, each record stamped with its step.
func writeRollouts(t *testing.T, dir, config string, steps map[int][]selfplay.RolloutRecord) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "rollouts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	for step, recs := range steps {
		for i := range recs {
			recs[i].Step = step
		}
		if err := selfplay.WriteRollouts(dir, step, recs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLearningSignal checks the table of what the updates learnt from,
// counted from the runs' rollouts files in groups of game.solver_rollouts.
// Mutations: comparing each group's rewards with the first reward of the
// file instead of the group's own first (across question boundaries),
// counting a group as informative when any rollout is rewarded, and
// counting the proposals of a run with game.train_proposer false, and not
// checking the last step's groups each fail it.
func TestLearningSignal(t *testing.T) {
	runs, doc, plots := fixture(t)
	write := func(run, config string, steps map[int][]selfplay.RolloutRecord) {
		t.Helper()
		writeRollouts(t, filepath.Join(runs, run), config, steps)
	}
	solver := func(reward float64, searches int) selfplay.RolloutRecord {
		return selfplay.RolloutRecord{Role: "solver", Reward: reward, Queries: make([]string, searches)}
	}
	proposer := func(advantage float64) selfplay.RolloutRecord {
		return selfplay.RolloutRecord{Role: "proposer", Advantage: advantage}
	}
	// ssp, groups of 3: step 1 all right (1 search each), then one right
	// of three (2 searches); step 2 all wrong, then all right but one
	// earning 1/4 (differs). 4 questions, 2 with rewards that differ; 7
	// rewarded rollouts, 2 of them searching twice; 2 of 3 proposals
	// trained with a nonzero advantage.
	write("ssp", "game:\n  solver_rollouts: 3\n", map[int][]selfplay.RolloutRecord{
		1: {proposer(0.5), proposer(0), solver(1, 1), solver(1, 1), solver(1, 1), solver(1, 2), solver(0, 1), solver(0, 1)},
		2: {proposer(-1), solver(0, 1), solver(0, 1), solver(0, 1), solver(0.25, 2), solver(1, 1), solver(1, 1)},
	})
	// supervised: no proposals; a group whose first reward differs from
	// the previous group's last but not within itself.
	write("supervised", "game:\n  solver_rollouts: 2\n  train_proposer: true\n", map[int][]selfplay.RolloutRecord{
		1: {solver(1, 1), solver(0, 2), solver(0, 1), solver(0, 1)},
	})
	if err := generate(runs, doc, plots, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(doc)
	for _, want := range []string{
		"| `ssp` | 1 | 4 | 2 (50 %) | 7 | 2 (29 %) | 2 |",
		"| `supervised` | 1 | 2 | 1 (50 %) | 1 | 0 (0 %) | — |",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no row %q in:\n%s", want, out)
		}
	}

	// A proposer that is not trained trains no proposal.
	write("ssp", "game:\n  solver_rollouts: 3\n  train_proposer: false\n", nil)
	if err := generate(runs, doc, plots, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	out, _ = os.ReadFile(doc)
	if want := "| `ssp` | 1 | 4 | 2 (50 %) | 7 | 2 (29 %) | 0 |"; !strings.Contains(string(out), want) {
		t.Errorf("with game.train_proposer false: no row %q in:\n%s", want, out)
	}

	// Rollouts that do not split into groups of game.solver_rollouts, or a
	// run without its config.yaml, are errors naming the file.
	write("ssp", "game:\n  solver_rollouts: 4\n", nil)
	if err := generate(runs, doc, plots, "", io.Discard); err == nil || !strings.Contains(err.Error(), "step-1.jsonl") {
		t.Errorf("groups of 4 over 6 rollouts: err %v", err)
	}
	// The last step's groups are checked too: supervised's only step holds
	// 4 rollouts, not groups of 3.
	write("ssp", "game:\n  solver_rollouts: 3\n", nil)
	write("supervised", "game:\n  solver_rollouts: 3\n", nil)
	if err := generate(runs, doc, plots, "", io.Discard); err == nil || !strings.Contains(err.Error(), filepath.Join("supervised", "rollouts", "step-1.jsonl")) {
		t.Errorf("groups of 3 over 4 rollouts in the last step: err %v", err)
	}
	if err := os.Remove(filepath.Join(runs, "ssp", "config.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := generate(runs, doc, plots, "", io.Discard); err == nil || !strings.Contains(err.Error(), "config.yaml") {
		t.Errorf("no config.yaml: err %v", err)
	}
}

// TestLinkedRuns reads a folder of links to runs made elsewhere as it reads
// the runs themselves: a link to a run directory is a run of its row, a
// link to a file is ignored and a broken link is an error naming it.
// Mutation: os.Lstat instead of os.Stat (links not followed) leaves the
// linked runs out and fails it.
func TestLinkedRuns(t *testing.T) {
	root := t.TempDir()
	made := filepath.Join(root, "elsewhere")
	writeRun(t, filepath.Join(made, "var-ssp-t08-s1"), []string{stepLine(1, 1, 2, 3, 0.5, 4, 10)},
		map[int]eval.Metrics{0: evalMetrics(0.2, 0.3, 1.5, []float64{0.5, 0.2, 0.1, 0.0}), 4: evalMetrics(0.3, 0.4, 2, []float64{0.6, 0.3, 0.2, 0.1})})
	writeRun(t, filepath.Join(made, "var-ssp-t08-s2"), []string{stepLine(1, 1, 2, 3, 0.5, 4, 10)},
		map[int]eval.Metrics{4: evalMetrics(0.4, 0.5, 2, []float64{0.7, 0.4, 0.3, 0.2})})
	if err := os.WriteFile(filepath.Join(made, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := filepath.Join(root, "variants")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"ssp-t08-s1": "var-ssp-t08-s1", "ssp-t08-s2": "var-ssp-t08-s2", "notes": "notes.txt"} {
		if err := os.Symlink(filepath.Join("..", "elsewhere", target), filepath.Join(runs, link)); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := loadRows(runs, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		if len(r.Used) > 0 {
			got = append(got, r.Name+": "+strconv.Itoa(len(r.Used))+" runs")
		}
	}
	if strings.Join(got, "; ") != "ssp-t08: 2 runs" {
		t.Errorf("rows read through links: %q, want ssp-t08 with 2 runs", got)
	}
	if err := os.Symlink(filepath.Join(root, "missing"), filepath.Join(runs, "gone-s1")); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRows(runs, io.Discard); err == nil || !strings.Contains(err.Error(), "gone-s1") {
		t.Errorf("a broken link: error %v, want one naming gone-s1", err)
	}
}

// TestNoCurves: with no plots directory (--curves=false) the report has its
// tables and no images, and nothing is written beside the document or in
// the working directory. Mutation: drawing the curves whatever plotsDir
// says writes them into the working directory and fails it.
func TestNoCurves(t *testing.T) {
	runs, doc, plots := seededFixture(t)
	cwd := t.TempDir()
	t.Chdir(cwd)
	if err := generate(runs, doc, "", "", io.Discard); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "| `ssp` — SSP self-play, no labels | 3 |") || strings.Contains(string(text), "![") {
		t.Errorf("report without curves:\n%s", text)
	}
	for _, dir := range []string{plots, cwd} {
		if svgs, _ := filepath.Glob(filepath.Join(dir, "*.svg")); len(svgs) > 0 {
			t.Errorf("curves written to %s: %v", dir, svgs)
		}
	}
}
