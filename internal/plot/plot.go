// Package plot draws the line charts of ssp's reports as standalone SVG:
// the training report (ssp report), the experiment report
// (scripts/expreport). A chart without data says "no data" instead of
// showing an empty box.
package plot

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Palette gives each curve one color (Tableau 10).
var Palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

// Point is one point of a curve.
type Point struct{ X, Y float64 }

// Series is one curve: a polyline with markers.
type Series struct {
	Label  string
	Color  string
	Dashed bool // a second series of the same color: dashed line, square markers
	Thin   bool // one of several curves drawn with their mean: thin and faint, small markers, no legend entry
	Points []Point
}

// Chart is a titled line chart.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
}

// Chart geometry, in SVG user units.
const (
	svgWidth, svgHeight = 760, 420
	marginLeft          = 70
	marginRight         = 190 // room for the legend
	marginTop           = 40
	marginBottom        = 55
)

// Line renders a line chart with axes, ticks, labels and a legend.
// Series without points are left out; a chart without any says so.
func Line(c Chart) []byte {
	var drawn []Series
	for _, s := range c.Series {
		if len(s.Points) > 0 {
			drawn = append(drawn, s)
		}
	}
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), 0.0, 0.0 // the y axis always shows 0
	for _, s := range drawn {
		for _, p := range s.Points {
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			ymin, ymax = math.Min(ymin, p.Y), math.Max(ymax, p.Y)
		}
	}
	if len(drawn) == 0 {
		xmin, xmax = 0, 1
	}
	xt, xdec := NiceTicks(xmin, xmax, 6, true)
	yt, ydec := NiceTicks(ymin, ymax, 5, false)
	x0, x1 := xt[0], xt[len(xt)-1]
	y0, y1 := yt[0], yt[len(yt)-1]
	plotW := float64(svgWidth - marginLeft - marginRight)
	plotH := float64(svgHeight - marginTop - marginBottom)
	px := func(x float64) float64 { return marginLeft + (x-x0)/(x1-x0)*plotW }
	py := func(y float64) float64 { return marginTop + plotH - (y-y0)/(y1-y0)*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(c.Title))
	fmt.Fprintf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", svgWidth, svgHeight)
	fmt.Fprintf(&b, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n",
		marginLeft+int(plotW)/2, esc(c.Title))

	// Grid, ticks and tick labels.
	b.WriteString("<g stroke=\"#dddddd\" stroke-width=\"1\">\n")
	for _, y := range yt {
		fmt.Fprintf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(px(x0)), num(py(y)), num(px(x1)), num(py(y)))
	}
	b.WriteString("</g>\n<g stroke=\"black\" stroke-width=\"1\">\n")
	fmt.Fprintf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(px(x0)), num(py(y0)), num(px(x1)), num(py(y0)))
	fmt.Fprintf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(px(x0)), num(py(y0)), num(px(x0)), num(py(y1)))
	for _, x := range xt {
		fmt.Fprintf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(px(x)), num(py(y0)), num(px(x)), num(py(y0)+5))
	}
	for _, y := range yt {
		fmt.Fprintf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(px(x0)-5), num(py(y)), num(px(x0)), num(py(y)))
	}
	b.WriteString("</g>\n<g fill=\"black\">\n")
	for _, x := range xt {
		fmt.Fprintf(&b, "<text x=\"%s\" y=\"%s\" text-anchor=\"middle\">%s</text>\n", num(px(x)), num(py(y0)+19), strconv.FormatFloat(x, 'f', xdec, 64))
	}
	for _, y := range yt {
		fmt.Fprintf(&b, "<text x=\"%s\" y=\"%s\" text-anchor=\"end\">%s</text>\n", num(px(x0)-8), num(py(y)+4), strconv.FormatFloat(y, 'f', ydec, 64))
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(&b, "<text x=\"%s\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", num(px(x0)+plotW/2), svgHeight-12, esc(c.XLabel))
	fmt.Fprintf(&b, "<text x=\"16\" y=\"%s\" text-anchor=\"middle\" transform=\"rotate(-90 16 %s)\">%s</text>\n",
		num(py(y0)-plotH/2), num(py(y0)-plotH/2), esc(c.YLabel))
	if len(drawn) == 0 {
		fmt.Fprintf(&b, "<text x=\"%s\" y=\"%s\" text-anchor=\"middle\" fill=\"#888888\">no data</text>\n", num(px(x0)+plotW/2), num(py(y0)-plotH/2))
	}

	// Curves: the thin ones first, under the bold ones.
	for _, thin := range []bool{true, false} {
		for _, s := range drawn {
			if s.Thin != thin {
				continue
			}
			pts := make([]string, len(s.Points))
			for i, p := range s.Points {
				pts[i] = num(px(p.X)) + "," + num(py(p.Y))
			}
			style := " stroke-width=\"2\""
			if s.Thin {
				style = " stroke-width=\"1\" stroke-opacity=\"0.45\""
			}
			if s.Dashed {
				style += " stroke-dasharray=\"6 4\""
			}
			fmt.Fprintf(&b, "<g><title>%s</title>\n<polyline fill=\"none\" stroke=\"%s\"%s points=\"%s\"/>\n",
				esc(s.Label), s.Color, style, strings.Join(pts, " "))
			for _, p := range s.Points {
				if s.Thin {
					fmt.Fprintf(&b, "<circle cx=\"%s\" cy=\"%s\" r=\"1.5\" fill=\"%s\" fill-opacity=\"0.45\"/>\n", num(px(p.X)), num(py(p.Y)), s.Color)
				} else {
					b.WriteString(marker(px(p.X), py(p.Y), s.Color, s.Dashed))
				}
			}
			b.WriteString("</g>\n")
		}
	}

	// Legend.
	lx := float64(svgWidth - marginRight + 15)
	var legend []Series
	for _, s := range drawn {
		if !s.Thin {
			legend = append(legend, s)
		}
	}
	for i, s := range legend {
		ly := float64(marginTop + 10 + 20*i)
		dash := ""
		if s.Dashed {
			dash = " stroke-dasharray=\"6 4\""
		}
		fmt.Fprintf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
			num(lx), num(ly), num(lx+24), num(ly), s.Color, dash)
		b.WriteString(marker(lx+12, ly, s.Color, s.Dashed))
		fmt.Fprintf(&b, "<text x=\"%s\" y=\"%s\">%s</text>\n", num(lx+30), num(ly+4), esc(s.Label))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// marker is a circle, or a square for a row's second series.
func marker(x, y float64, color string, square bool) string {
	if square {
		return fmt.Sprintf("<rect x=\"%s\" y=\"%s\" width=\"6\" height=\"6\" fill=\"%s\"/>\n", num(x-3), num(y-3), color)
	}
	return fmt.Sprintf("<circle cx=\"%s\" cy=\"%s\" r=\"3\" fill=\"%s\"/>\n", num(x), num(y), color)
}

// NiceTicks returns evenly spaced round tick values covering [lo, hi]
// (about n intervals) and the decimals needed to print them. Integer
// axes (training steps) never get fractional ticks.
func NiceTicks(lo, hi float64, n int, integer bool) ([]float64, int) {
	if hi <= lo {
		if lo == 0 {
			hi = 1
		} else {
			pad := math.Abs(lo) * 0.1
			lo, hi = lo-pad, hi+pad
		}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, f := range []float64{1, 2, 2.5, 5} {
		if f*mag >= raw {
			step = f * mag
			break
		}
	}
	if integer && step < 1 {
		step = 1
	}
	dec := 0
	for dec < 6 {
		s := step * math.Pow(10, float64(dec))
		if math.Abs(s-math.Round(s)) < 1e-6 {
			break
		}
		dec++
	}
	scale := math.Pow(10, float64(dec))
	start := math.Floor(lo/step+1e-9) * step
	end := math.Ceil(hi/step-1e-9) * step
	var ticks []float64
	for i := 0; ; i++ {
		t := start + float64(i)*step
		if t > end+step*1e-9 {
			break
		}
		t = math.Round(t*scale) / scale // no 0.30000000000000004
		if t == 0 {
			t = 0 // no -0
		}
		ticks = append(ticks, t)
	}
	return ticks, dec
}

// num formats an SVG coordinate.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if s == "-0.0" {
		s = "0.0"
	}
	return s
}

func esc(s string) string { return html.EscapeString(s) }
