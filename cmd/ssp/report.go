package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/plot"
)

func init() {
	register(command{name: "report", summary: "write the learning curves of a training run as an HTML page", run: runReport})
}

func runReport(ctx context.Context, args []string) error {
	fs := newFlags("report", "RUN [--out FILE.html]")
	out := fs.String("out", "", "HTML file to write (default: RUN/report.html)")
	runs, err := parseFlagsAndFiles(fs, args)
	if err != nil {
		return err
	}
	if len(runs) != 1 {
		return fmt.Errorf("%w: want one training run directory", errUsage)
	}
	run := runs[0]
	steps, err := readRunMetrics(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(run, "report.html")
	}
	page := trainingReport(run, steps)
	if err := outdir.WriteFile(*out, func(w io.Writer) error { _, err := w.Write(page); return err }); err != nil {
		return err
	}
	fmt.Println(*out)
	return nil
}

// runStep is one line of a run's metrics.jsonl; null values are absent.
type runStep map[string]float64

// readRunMetrics reads metrics.jsonl; a line cut short by a killed run is
// dropped, as a resumed run drops it.
func readRunMetrics(path string) ([]runStep, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("training run: %w", err)
	}
	var steps []runStep
	sc := bufio.NewScanner(bytes.NewReader(data[:bytes.LastIndexByte(data, '\n')+1]))
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		var raw map[string]*float64
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		st := runStep{}
		for k, v := range raw {
			if v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) {
				st[k] = *v
			}
		}
		steps = append(steps, st)
	}
	return steps, nil
}

// curve is the series of key over the steps that logged it, scaled.
func curve(steps []runStep, label, key string, color int, dashed bool, value func(runStep) (float64, bool)) plot.Series {
	s := plot.Series{Label: label, Color: plot.Palette[color%len(plot.Palette)], Dashed: dashed}
	for _, st := range steps {
		x, ok := st["step"]
		if !ok {
			continue
		}
		if value == nil {
			value = func(st runStep) (float64, bool) { v, ok := st[key]; return v, ok }
		}
		if v, ok := value(st); ok {
			s.Points = append(s.Points, plot.Point{X: x, Y: v})
		}
	}
	return s
}

// trainingReport renders report.html of a training run: its learning
// curves, what produced it, and its configuration.
func trainingReport(run string, steps []runStep) []byte {
	tokensPerSecond := func(st runStep) (float64, bool) {
		tok, ok1 := st["tokens_generated"]
		sec, ok2 := st["step_seconds"]
		return tok / sec, ok1 && ok2 && sec > 0
	}
	// Only the questions whose rollouts earned different rewards give the
	// solver a nonzero group-relative advantage.
	informativeShare := func(st runStep) (float64, bool) {
		n, ok1 := st["solver_groups_informative"]
		groups, ok2 := st["solver_groups"]
		return n / groups, ok1 && ok2 && groups > 0
	}
	charts := []plot.Chart{
		{Title: "rewards", XLabel: "training step", YLabel: "mean reward", Series: []plot.Series{
			curve(steps, "proposer", "proposer_reward", 0, false, nil), curve(steps, "solver", "solver_reward", 1, false, nil)}},
		{Title: "valid questions", XLabel: "training step", YLabel: "fraction", Series: []plot.Series{
			curve(steps, "valid question rate", "valid_question_rate", 0, false, nil), curve(steps, "RAG check passed", "rag_pass_rate", 0, true, nil)}},
		{Title: "solver accuracy", XLabel: "training step", YLabel: "fraction", Series: []plot.Series{
			curve(steps, "rollouts correct", "solver_accuracy", 2, false, nil),
			curve(steps, "questions with rewards that differ", "", 2, true, informativeShare)}},
		{Title: "held-out benchmark (run.eval_every)", XLabel: "training step", YLabel: "fraction", Series: []plot.Series{
			curve(steps, "EM", "eval/em", 3, false, nil), curve(steps, "F1", "eval/f1", 3, true, nil)}},
		{Title: "generation speed", XLabel: "training step", YLabel: "tokens generated per second of step", Series: []plot.Series{
			curve(steps, "tokens/s", "", 4, false, tokensPerSecond)}},
	}
	var b strings.Builder
	title := html.EscapeString(filepath.Base(filepath.Clean(run)))
	fmt.Fprintf(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Training run: %s</title>\n", title)
	b.WriteString("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}figure{display:inline-block;margin:1em}pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head><body>\n")
	fmt.Fprintf(&b, "<h1>Training run: %s</h1>\n<p>%d steps logged in <code>%s</code>.</p>\n", title, len(steps), html.EscapeString(filepath.Join(run, "metrics.jsonl")))
	for _, c := range charts {
		fmt.Fprintf(&b, "<figure>%s</figure>\n", plot.Line(c))
	}
	if len(steps) > 0 {
		last := steps[len(steps)-1]
		keys := make([]string, 0, len(last))
		for k := range last {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("<h2>Last step</h2><table><tr><th>metric</th><th>value</th></tr>\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%.4g</td></tr>\n", html.EscapeString(k), last[k])
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("<h2>Provenance</h2>\n")
	if data, err := os.ReadFile(filepath.Join(run, "provenance.jsonl")); err == nil {
		b.WriteString("<p>One line per start or resume of the run.</p><pre>")
		b.WriteString(html.EscapeString(string(data)))
		b.WriteString("</pre>\n")
	} else {
		b.WriteString("<p>no provenance.jsonl: the run predates it.</p>\n")
	}
	if data, err := os.ReadFile(filepath.Join(run, "config.yaml")); err == nil {
		b.WriteString("<details><summary>config.yaml</summary><pre>")
		b.WriteString(html.EscapeString(string(data)))
		b.WriteString("</pre></details>\n")
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}
