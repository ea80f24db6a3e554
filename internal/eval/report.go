package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ssp-project/ssp/internal/outdir"
)

// writeRunDir writes every file of a run into a temporary sibling
// directory and renames it into place (package outdir), so a run directory
// is complete or absent.
func writeRunDir(dir string, opt outdir.Options, title string, records []Record, m *Metrics) error {
	return outdir.Write(filepath.Clean(dir), outdir.EvalRun, opt, func(tmp string) error {
		return writeRunFiles(tmp, dir, title, records, m)
	})
}

func writeRunFiles(tmp, dir, title string, records []Record, m *Metrics) error {
	write := func(name string, fn func(w io.Writer) error) error {
		f, err := os.Create(filepath.Join(tmp, name))
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		if err := fn(bw); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := bw.Flush(); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
		return f.Close()
	}
	steps := []struct {
		name string
		fn   func(io.Writer) error
	}{
		{"trajectories.jsonl", func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			for _, r := range records {
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			return nil
		}},
		{"metrics.json", func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(m)
		}},
		{"report.md", func(w io.Writer) error { return WriteMarkdown(w, title, m, records) }},
		{"report.html", func(w io.Writer) error { return WriteHTML(w, title, m, records) }},
	}
	for _, s := range steps {
		if err := write(s.name, s.fn); err != nil {
			return fmt.Errorf("eval run %s: %w", dir, err)
		}
	}
	return nil
}

var failureKinds = []string{FinishNoAnswer, FinishTurnLimit, FinishLength, FinishFormatError}

func pct(x float64) string { return fmt.Sprintf("%.1f", 100*x) }

func judgeCell(g Group) string {
	if g.JudgeAcc == nil {
		return "–"
	}
	return pct(*g.JudgeAcc)
}

// tableRows returns the rows of the main table: each dataset, then "all".
func tableRows(groups map[string]Group, overall Group) ([]string, []Group) {
	names := sortedKeys(groups)
	gs := make([]Group, 0, len(names)+1)
	for _, n := range names {
		gs = append(gs, groups[n])
	}
	return append(names, "all"), append(gs, overall)
}

func markdownTable(w io.Writer, first string, names []string, gs []Group) {
	fmt.Fprintf(w, "| %s | N | EM | F1 | SubEM | Judge | Turns | Searches | Tokens |\n", first)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, g := range gs {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %.2f | %.2f | %.0f |\n", names[i], g.N,
			pct(g.EM), pct(g.F1), pct(g.SubEM), judgeCell(g), g.AvgTurns, g.AvgSearches, g.AvgTokens)
	}
}

// example is a trajectory the report shows in full, and why.
type example struct {
	Heading string
	Record  Record
}

// reportExamples picks the trajectories a reader should see: the best answer
// (highest F1), the worst answered one (lowest F1 among trajectories that
// gave an answer), and the first trajectory of each failure category.
func reportExamples(records []Record) []example {
	var out []example
	best, worst := -1, -1
	for i, r := range records {
		if best < 0 || r.F1 > records[best].F1 || (r.F1 == records[best].F1 && r.EM > records[best].EM) {
			best = i
		}
		if r.FinishReason == FinishAnswer && (worst < 0 || r.F1 < records[worst].F1) {
			worst = i
		}
	}
	if best >= 0 {
		out = append(out, example{"Best answer (highest F1)", records[best]})
	}
	if worst >= 0 && worst != best {
		out = append(out, example{"Worst answer (lowest F1 among trajectories that answered)", records[worst]})
	}
	for _, kind := range failureKinds {
		for _, r := range records {
			if r.FinishReason == kind {
				out = append(out, example{"Failure: " + kind, r})
				break
			}
		}
	}
	return out
}

// excerpt cuts a response to at most n bytes, on a character boundary.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n… (%d more bytes)", len(s)-cut)
}

const excerptBytes = 2000

// provenanceRows are the provenance fields worth a row, in order.
func provenanceRows(p *Provenance) [][2]string {
	if p == nil {
		return nil
	}
	rows := [][2]string{{"command", p.Command}, {"code", p.Code}, {"started", p.Started}, {"model", p.Model},
		{"predictions", p.Predictions}, {"index", p.Index}, {"retriever", p.Retriever},
		{"data", strings.Join(p.Data, " ")}, {"examples", fmt.Sprint(p.Examples)}, {"data digest", p.DataDigest}}
	keys := make([]string, 0, len(p.Settings))
	for k := range p.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rows = append(rows, [2]string{k, fmt.Sprint(p.Settings[k])})
	}
	out := rows[:0]
	for _, r := range rows {
		if r[1] != "" {
			out = append(out, r)
		}
	}
	return out
}

// WriteMarkdown writes report.md: scores are percentages over N examples,
// then example trajectories and what produced the run.
func WriteMarkdown(w io.Writer, title string, m *Metrics, records []Record) error {
	fmt.Fprintf(w, "# Evaluation: %s\n\n%d examples. EM, F1, SubEM and Judge are percentages (mean over examples of the best score over gold aliases).\n\n", title, m.Examples)
	names, gs := tableRows(m.ByDataset, m.Overall)
	markdownTable(w, "Dataset", names, gs)
	fmt.Fprintf(w, "\n## Failures\n\n| Dataset | %s |\n|---|%s\n", strings.Join(failureKinds, " | "), strings.Repeat("---:|", len(failureKinds)))
	for i, g := range gs {
		fmt.Fprintf(w, "| %s |", names[i])
		for _, k := range failureKinds {
			fmt.Fprintf(w, " %d |", g.Failures[k])
		}
		fmt.Fprintln(w)
	}
	if len(m.ByHops) > 0 {
		fmt.Fprintf(w, "\n## By hops\n\n")
		hops := sortedKeys(m.ByHops)
		hg := make([]Group, len(hops))
		for i, h := range hops {
			hg[i] = m.ByHops[h]
		}
		markdownTable(w, "Hops", hops, hg)
	}
	if m.Judge != nil {
		fmt.Fprintf(w, "\nJudge: %d requests, %d cache hits, %d errors (errors count as incorrect).\n", m.Judge.Requests, m.Judge.CacheHits, m.Judge.Errors)
	}
	if ex := reportExamples(records); len(ex) > 0 {
		fmt.Fprintf(w, "\n## Example trajectories\n")
		for _, e := range ex {
			r := e.Record
			fmt.Fprintf(w, "\n### %s\n\n- id: `%s`\n- question: %s\n- gold: %s\n- prediction: %s\n- EM %d, F1 %.2f; %d turns, %d searches, %d tokens; finish: %s\n\n",
				e.Heading, r.ID, r.Question, strings.Join(r.GoldenAnswers, " | "), r.Prediction, r.EM, r.F1, r.Turns, r.Searches, r.Tokens, r.FinishReason)
			fence := "```"
			for strings.Contains(r.Response, fence) {
				fence += "`"
			}
			fmt.Fprintf(w, "%s text\n%s\n%s\n", fence, excerpt(r.Response, excerptBytes), fence)
		}
	}
	if rows := provenanceRows(m.Provenance); len(rows) > 0 {
		fmt.Fprintf(w, "\n## Provenance\n\n| | |\n|---|---|\n")
		for _, r := range rows {
			fmt.Fprintf(w, "| %s | %s |\n", r[0], strings.ReplaceAll(r[1], "|", "\\|"))
		}
	}
	return nil
}

// barChart draws one SVG bar per label, values in [0,1].
func barChart(w io.Writer, caption string, labels []string, values []float64) {
	const barW, gap, h, top, bottom = 48, 24, 160, 20, 40
	width := len(labels)*(barW+gap) + gap
	fmt.Fprintf(w, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"%s\">\n",
		width, h+top+bottom, html.EscapeString(caption))
	fmt.Fprintf(w, "<line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", top+h, width, top+h)
	if len(values) == 0 {
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#888\">no data</text>\n", gap, top+h/2)
	} else if allZero(values) {
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#888\">every value is 0</text>\n", gap, top+h/2)
	}
	for i, v := range values {
		v = max(0, min(1, v))
		x := gap + i*(barW+gap)
		bh := int(v * h)
		fmt.Fprintf(w, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#4878a8\"/>\n", x, top+h-bh, barW, bh)
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n", x+barW/2, top+h-bh-4, pct(v))
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n", x+barW/2, top+h+16, html.EscapeString(labels[i]))
	}
	fmt.Fprintf(w, "</svg><figcaption>%s</figcaption></figure>\n", html.EscapeString(caption))
}

func allZero(values []float64) bool {
	for _, v := range values {
		if v != 0 {
			return false
		}
	}
	return true
}

func htmlTable(w io.Writer, first string, names []string, gs []Group) {
	fmt.Fprintf(w, "<table><tr><th>%s</th><th>N</th><th>EM</th><th>F1</th><th>SubEM</th><th>Judge</th><th>Turns</th><th>Searches</th><th>Tokens</th></tr>\n", first)
	for i, g := range gs {
		fmt.Fprintf(w, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.0f</td></tr>\n",
			html.EscapeString(names[i]), g.N, pct(g.EM), pct(g.F1), pct(g.SubEM), judgeCell(g), g.AvgTurns, g.AvgSearches, g.AvgTokens)
	}
	fmt.Fprintln(w, "</table>")
}

// WriteHTML writes report.html: the tables of report.md plus inline SVG bar charts.
func WriteHTML(w io.Writer, title string, m *Metrics, records []Record) error {
	t := html.EscapeString(title)
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Evaluation: %s</title>\n", t)
	fmt.Fprintln(w, "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:1em}</style></head><body>")
	fmt.Fprintf(w, "<h1>Evaluation: %s</h1><p>%d examples. Scores are percentages: mean over examples of the best score over gold aliases.</p>\n", t, m.Examples)
	names, gs := tableRows(m.ByDataset, m.Overall)
	htmlTable(w, "Dataset", names, gs)
	em := make([]float64, len(gs))
	f1 := make([]float64, len(gs))
	for i, g := range gs {
		em[i], f1[i] = g.EM, g.F1
	}
	barChart(w, "Exact match by dataset (%)", names, em)
	barChart(w, "Token F1 by dataset (%)", names, f1)
	fmt.Fprintln(w, "<h2>Failures</h2><table><tr><th>Dataset</th>")
	for _, k := range failureKinds {
		fmt.Fprintf(w, "<th>%s</th>", k)
	}
	fmt.Fprintln(w, "</tr>")
	for i, g := range gs {
		fmt.Fprintf(w, "<tr><td>%s</td>", html.EscapeString(names[i]))
		for _, k := range failureKinds {
			fmt.Fprintf(w, "<td>%d</td>", g.Failures[k])
		}
		fmt.Fprintln(w, "</tr>")
	}
	fmt.Fprintln(w, "</table>")
	if len(m.ByHops) > 0 {
		hops := sortedKeys(m.ByHops)
		hg := make([]Group, len(hops))
		hem := make([]float64, len(hops))
		for i, h := range hops {
			hg[i] = m.ByHops[h]
			hem[i] = hg[i].EM
		}
		fmt.Fprintln(w, "<h2>By hops</h2>")
		htmlTable(w, "Hops", hops, hg)
		barChart(w, "Exact match by hops (%)", hops, hem)
	}
	if m.Judge != nil {
		fmt.Fprintf(w, "<p>Judge: %d requests, %d cache hits, %d errors (errors count as incorrect).</p>\n", m.Judge.Requests, m.Judge.CacheHits, m.Judge.Errors)
	}
	if ex := reportExamples(records); len(ex) > 0 {
		fmt.Fprintln(w, "<h2>Example trajectories</h2>")
		for _, e := range ex {
			r := e.Record
			fmt.Fprintf(w, "<h3>%s</h3><p>id <code>%s</code><br>question: %s<br>gold: %s<br>prediction: <b>%s</b><br>EM %d, F1 %.2f; %d turns, %d searches, %d tokens; finish: %s</p><pre style=\"white-space:pre-wrap;background:#f6f6f6;padding:1em\">%s</pre>\n",
				html.EscapeString(e.Heading), html.EscapeString(r.ID), html.EscapeString(r.Question), html.EscapeString(strings.Join(r.GoldenAnswers, " | ")),
				html.EscapeString(r.Prediction), r.EM, r.F1, r.Turns, r.Searches, r.Tokens, html.EscapeString(r.FinishReason), html.EscapeString(excerpt(r.Response, excerptBytes)))
		}
	}
	if rows := provenanceRows(m.Provenance); len(rows) > 0 {
		fmt.Fprintln(w, "<h2>Provenance</h2><table>")
		for _, r := range rows {
			fmt.Fprintf(w, "<tr><td>%s</td><td>%s</td></tr>\n", html.EscapeString(r[0]), html.EscapeString(r[1]))
		}
		fmt.Fprintln(w, "</table>")
	}
	fmt.Fprintln(w, "</body></html>")
	return nil
}

// Comparable reports why two runs' scores do not measure the same thing:
// other questions (by their digest when both runs record it, else by the
// number of examples per dataset). nil means they can be compared.
func Comparable(a, b *Metrics) error {
	if a.Provenance != nil && b.Provenance != nil && a.Provenance.DataDigest != "" && b.Provenance.DataDigest != "" {
		if a.Provenance.DataDigest != b.Provenance.DataDigest {
			return fmt.Errorf("the runs evaluated different questions: %d examples (%s, data %s) vs %d (%s, data %s)",
				a.Examples, a.Provenance.DataDigest, strings.Join(a.Provenance.Data, " "),
				b.Examples, b.Provenance.DataDigest, strings.Join(b.Provenance.Data, " "))
		}
		return nil
	}
	if a.Examples != b.Examples {
		return fmt.Errorf("the runs evaluated different numbers of questions: %d vs %d", a.Examples, b.Examples)
	}
	for name, g := range a.ByDataset {
		if h, ok := b.ByDataset[name]; !ok || h.N != g.N {
			return fmt.Errorf("the runs evaluated different questions: dataset %s has %d examples vs %d", name, g.N, h.N)
		}
	}
	return nil
}

// Compare writes a side-by-side table of two runs' per-dataset scores with
// deltas (B minus A, in percentage points).
func Compare(w io.Writer, nameA, nameB string, a, b *Metrics) {
	fmt.Fprintf(w, "A = %s\nB = %s\n\n", nameA, nameB)
	fmt.Fprintf(w, "%-20s %6s %6s | %6s %6s %7s | %6s %6s %7s | %6s %6s %7s\n", "dataset", "N(A)", "N(B)",
		"EM A", "EM B", "ΔEM", "F1 A", "F1 B", "ΔF1", "Sub A", "Sub B", "ΔSub")
	keys := map[string]bool{}
	for k := range a.ByDataset {
		keys[k] = true
	}
	for k := range b.ByDataset {
		keys[k] = true
	}
	names := sortedKeys(keys)
	row := func(name string, ga, gb Group, okA, okB bool) {
		cell := func(g Group, ok bool, v float64) string {
			if !ok {
				return "–"
			}
			return pct(v)
		}
		delta := func(x, y float64) string {
			if !okA || !okB {
				return "–"
			}
			return fmt.Sprintf("%+.1f", 100*(y-x))
		}
		fmt.Fprintf(w, "%-20s %6d %6d | %6s %6s %7s | %6s %6s %7s | %6s %6s %7s\n", name, ga.N, gb.N,
			cell(ga, okA, ga.EM), cell(gb, okB, gb.EM), delta(ga.EM, gb.EM),
			cell(ga, okA, ga.F1), cell(gb, okB, gb.F1), delta(ga.F1, gb.F1),
			cell(ga, okA, ga.SubEM), cell(gb, okB, gb.SubEM), delta(ga.SubEM, gb.SubEM))
	}
	for _, n := range names {
		ga, okA := a.ByDataset[n]
		gb, okB := b.ByDataset[n]
		row(n, ga, gb, okA, okB)
	}
	row("all", a.Overall, b.Overall, true, true)
}
