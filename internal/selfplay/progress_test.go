package selfplay

import (
	"strings"
	"testing"
)

// TestProgressSummary: the run's last lines compare the solver's accuracy
// on the first and last quarter of its steps, each quarter pooled over its
// rollouts, and skip steps that solved nothing (mutations seen to fail:
// averaging the steps' accuracies unweighted; counting a step without
// rollouts; comparing halves instead of quarters).
func TestProgressSummary(t *testing.T) {
	var out strings.Builder
	p := &Progress{W: &out, TotalSteps: 9}
	steps := []struct{ acc, rollouts float64 }{
		{0.5, 2}, {0, 0}, {0.25, 8}, {0.9, 10}, {0.9, 10}, {0.1, 10}, {0.1, 10}, {1, 4}, {0.5, 4},
	}
	for i, s := range steps {
		p.Step(Metrics{{"step", float64(i + 1)}, {"solver_accuracy", s.acc}, {"solver_rollouts", s.rollouts}})
	}
	p.Summary()
	// Eight steps had rollouts: steps 1 and 3 are the first quarter,
	// (1+2)/10 = 0.30; steps 8-9 the last, (4+2)/8 = 0.75.
	if want := "solver accuracy: 0.30 on steps 1–3, 0.75 on steps 8–9\n"; !strings.Contains(out.String(), want) {
		t.Errorf("summary:\n%s\nwant %q", out.String(), want)
	}
	if strings.Contains(out.String(), "held-out EM") {
		t.Errorf("a run without validations reports held-out EM:\n%s", out.String())
	}

	// One step: nothing to compare.
	out.Reset()
	p = &Progress{W: &out}
	p.Step(Metrics{{"step", 1}, {"solver_accuracy", 0.5}, {"solver_rollouts", 4}})
	p.Validation(1, Metrics{{"eval/em", 0.5}})
	p.Summary()
	if strings.Contains(out.String(), "solver accuracy:") || strings.Contains(out.String(), "held-out EM:") {
		t.Errorf("one step and one validation give a comparison:\n%s", out.String())
	}
	var nilProgress *Progress
	nilProgress.Validation(0, nil)
	nilProgress.Summary()
}
