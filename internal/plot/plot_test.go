package plot

import (
	"strings"
	"testing"
)

func TestLineNoData(t *testing.T) {
	empty := string(Line(Chart{Title: "reward", Series: []Series{{Label: "a", Color: Palette[0]}}}))
	if !strings.Contains(empty, ">no data<") || strings.Contains(empty, "<polyline") {
		t.Errorf("a chart without points:\n%s", empty)
	}
	full := string(Line(Chart{Title: "reward", Series: []Series{{Label: "a", Color: Palette[0], Points: []Point{{X: 1, Y: 0.5}, {X: 2, Y: 0.7}}}}}))
	if strings.Contains(full, ">no data<") || strings.Count(full, "<polyline") != 1 || !strings.Contains(full, "<title>a</title>") {
		t.Errorf("a chart with one curve:\n%s", full)
	}
}
