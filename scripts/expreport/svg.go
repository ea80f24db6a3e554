package main

import (
	"fmt"
	"math"
	"slices"

	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/plot"
)

// palette gives each row one color in every plot.
var palette = plot.Palette

// svgFile is one rendered SVG file.
type svgFile struct {
	File, Title string
	SVG         []byte
}

// The charts are drawn by package plot, shared with `ssp report`.
type (
	xy     = plot.Point
	series = plot.Series
	chart  = plot.Chart
)

var (
	drawChart = plot.Line
	niceTicks = plot.NiceTicks
)

// renderPlots draws the five curves of the report. A row with several
// seeds has a thin curve per seed and their mean drawn boldly.
func renderPlots(rows []*row) []svgFile {
	evalCurve := func(value func(*eval.Metrics) float64) func(*run) []xy {
		return func(ru *run) []xy {
			var pts []xy
			for _, e := range ru.Evals {
				if v := value(e.Metrics); !math.IsNaN(v) {
					pts = append(pts, xy{X: float64(e.Step), Y: 100 * v})
				}
			}
			return pts
		}
	}
	stepCurve := func(key string) func(*run) []xy {
		return func(ru *run) []xy {
			var pts []xy
			for _, st := range ru.Steps {
				if v := st.get(key); !math.IsNaN(v) {
					pts = append(pts, xy{X: st.Step, Y: v})
				}
			}
			return pts
		}
	}
	var em, multi, reward, valid, hops []series
	for _, r := range rows {
		if !r.ran() {
			continue
		}
		em = append(em, rowCurves(r, r.Name, false, evalCurve(func(m *eval.Metrics) float64 { return m.Overall.EM }))...)
		multi = append(multi, rowCurves(r, r.Name, false, evalCurve(multiHopEM))...)
		if slices.ContainsFunc(r.Used, func(ru *run) bool { return !allZeroOrNull(ru, "proposer_reward") }) {
			reward = append(reward, rowCurves(r, r.Name, false, stepCurve("proposer_reward"))...)
		}
		if !selfPlayRow(r) {
			continue // supervised rows log no proposer metrics
		}
		valid = append(valid, rowCurves(r, r.Name, false, stepCurve("valid_question_rate"))...)
		hops = append(hops, rowCurves(r, r.Name+" hops", false, stepCurve("valid_question_hops"))...)
		hops = append(hops, rowCurves(r, r.Name+" searches", true, stepCurve("valid_question_searches"))...)
	}
	specs := []struct {
		file string
		c    chart
	}{
		{"benchmark-em.svg", chart{Title: "benchmark EM", XLabel: "training step", YLabel: "EM (points)", Series: em}},
		{"benchmark-em-multihop.svg", chart{Title: "benchmark EM, mean of 2–4 hops", XLabel: "training step", YLabel: "EM (points)", Series: multi}},
		{"proposer-reward.svg", chart{Title: "proposer reward", XLabel: "training step", YLabel: "mean proposer reward", Series: reward}},
		{"valid-question-rate.svg", chart{Title: "valid question rate", XLabel: "training step", YLabel: "fraction of proposals valid", Series: valid}},
		{"proposed-hops-searches.svg", chart{Title: "hops and searches of valid questions", XLabel: "training step", YLabel: "mean per valid question", Series: hops}},
	}
	out := make([]svgFile, len(specs))
	for i, s := range specs {
		out[i] = svgFile{File: s.file, Title: s.c.Title, SVG: drawChart(s.c)}
	}
	return out
}

// rowCurves is the row's curve over its runs: the run's own curve when it
// has one run with points, else a thin curve per run and, boldly, their
// mean at the x values every one of them has.
func rowCurves(r *row, label string, dashed bool, curve func(*run) []xy) []series {
	var out []series
	var curves [][]xy
	for _, ru := range r.Used {
		pts := curve(ru)
		if len(pts) == 0 {
			continue
		}
		curves = append(curves, pts)
		out = append(out, series{Label: label + " " + ru.Name, Color: r.color, Dashed: dashed, Thin: true, Points: pts})
	}
	switch len(curves) {
	case 0:
		return nil
	case 1:
		return []series{{Label: label, Color: r.color, Dashed: dashed, Points: curves[0]}}
	}
	return append(out, series{Label: fmt.Sprintf("%s (mean of %d)", label, len(curves)), Color: r.color, Dashed: dashed,
		Points: meanCurve(curves)})
}

// meanCurve averages curves at the x values all of them have, by x.
func meanCurve(curves [][]xy) []xy {
	sum := map[float64]float64{}
	count := map[float64]int{}
	for _, c := range curves {
		for _, p := range c {
			sum[p.X] += p.Y
			count[p.X]++
		}
	}
	var out []xy
	for x, n := range count {
		if n == len(curves) {
			out = append(out, xy{X: x, Y: sum[x] / float64(n)})
		}
	}
	slices.SortFunc(out, func(a, b xy) int { return cmpFloat(a.X, b.X) })
	return out
}

// allZeroOrNull reports whether key is 0, null or absent on every step.
func allZeroOrNull(r *run, key string) bool {
	for _, s := range r.Steps {
		if v := s.get(key); !math.IsNaN(v) && v != 0 {
			return false
		}
	}
	return true
}

// selfPlay reports whether the run logged any proposer metric.
func selfPlay(r *run) bool {
	for _, k := range proposerKeys {
		if !allZeroOrNull(r, k) {
			return true
		}
	}
	return false
}

// selfPlayRow reports whether any of the row's runs is a self-play run.
func selfPlayRow(r *row) bool { return slices.ContainsFunc(r.Used, selfPlay) }
