package selfplay

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress prints a line per phase, with its rate, and a summary per step.
// A nil *Progress prints nothing.
type Progress struct {
	mu sync.Mutex
	W  io.Writer
	// TotalSteps, when set, is shown as "step N/TotalSteps".
	TotalSteps int

	// What Summary compares: each step's solver accuracy, and the first
	// and last validation.
	accuracy                    []stepAccuracy
	firstEval, lastEval         Metrics
	firstEvalStep, lastEvalStep int
}

// Phase reports a finished phase: n units of work in d.
func (p *Progress) Phase(step int, name string, n int, unit string, d time.Duration) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rate := 0.0
	if d > 0 {
		rate = float64(n) / d.Seconds()
	}
	fmt.Fprintf(p.W, "step %s  %-9s %6d %-12s %7.1fs %9.1f/s\n", p.step(step), name, n, unit, d.Seconds(), rate)
}

// Step reports a finished step in one line.
func (p *Progress) Step(m Metrics) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	get := func(name string) float64 { v, _ := m.Get(name); return v }
	if n := get("solver_rollouts"); n > 0 {
		p.accuracy = append(p.accuracy, stepAccuracy{step: int(get("step")), accuracy: get("solver_accuracy"), rollouts: n})
	}
	fmt.Fprintf(p.W, "step %s  proposer %.3f  solver %.3f  valid %.2f  rag %.2f  acc %.2f  groups %.0f/%.0f  loss %.4f  kl %.4f  entropy %.3f  %.0f tok  %.1fs\n",
		p.step(int(get("step"))), get("proposer_reward"), get("solver_reward"), get("valid_question_rate"),
		get("rag_pass_rate"), get("solver_accuracy"), get("solver_groups_informative"), get("solver_groups"), get("policy_loss"), get("kl"), get("entropy"),
		get("tokens_generated"), get("step_seconds"))
}

func (p *Progress) step(step int) string {
	if p.TotalSteps > 0 {
		return fmt.Sprintf("%d/%d", step, p.TotalSteps)
	}
	return fmt.Sprint(step)
}

// Validation reports a held-out validation in one line: EM overall and by
// hop count, F1 and searches per question.
func (p *Progress) Validation(step int, m Metrics) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.firstEval == nil {
		p.firstEval, p.firstEvalStep = m, step
	}
	p.lastEval, p.lastEvalStep = m, step
	get := func(name string) float64 { v, _ := m.Get(name); return v }
	line := fmt.Sprintf("validation at step %d  EM %.1f", step, 100*get("eval/em"))
	for _, h := range hopMetrics(m) {
		line += fmt.Sprintf("  %s-hop %.1f", strings.TrimPrefix(h.Name, "eval/em_hops_"), 100*h.Value)
	}
	fmt.Fprintf(p.W, "%s  F1 %.1f  searches %.2f\n", line, 100*get("eval/f1"), get("eval/avg_searches"))
}

// Summary reports, once the run's steps are done, how the run moved: the
// solver's training accuracy on the first and the last quarter of the steps
// this process played, and held-out EM (overall and by hop count) at its
// first and last validation. It prints nothing for what was not measured.
func (p *Progress) Summary() {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.accuracy); n >= 2 {
		q := max(1, n/4)
		fmt.Fprintf(p.W, "solver accuracy: %.2f on steps %s, %.2f on steps %s\n",
			pooledAccuracy(p.accuracy[:q]), stepRange(p.accuracy[:q]), pooledAccuracy(p.accuracy[n-q:]), stepRange(p.accuracy[n-q:]))
	}
	if p.firstEval != nil && p.lastEvalStep != p.firstEvalStep {
		from, _ := p.firstEval.Get("eval/em")
		to, _ := p.lastEval.Get("eval/em")
		line := fmt.Sprintf("held-out EM: %.1f at step %d, %.1f at step %d (%+.1f)", 100*from, p.firstEvalStep, 100*to, p.lastEvalStep, 100*(to-from))
		var hops []string
		for _, h := range hopMetrics(p.lastEval) {
			if before, ok := p.firstEval.Get(h.Name); ok {
				hops = append(hops, fmt.Sprintf("%s-hop %.1f → %.1f", strings.TrimPrefix(h.Name, "eval/em_hops_"), 100*before, 100*h.Value))
			}
		}
		if len(hops) > 0 {
			line += "; " + strings.Join(hops, ", ")
		}
		fmt.Fprintln(p.W, line)
	}
}

// stepAccuracy is one step's solver accuracy and how many rollouts it is of.
type stepAccuracy struct {
	step     int
	accuracy float64
	rollouts float64
}

// pooledAccuracy is the share of correct rollouts over steps, each step
// weighted by its rollouts: a step whose few questions passed counts less
// than one with a full batch.
func pooledAccuracy(steps []stepAccuracy) float64 {
	var correct, rollouts float64
	for _, s := range steps {
		correct += s.accuracy * s.rollouts
		rollouts += s.rollouts
	}
	if rollouts == 0 {
		return 0
	}
	return correct / rollouts
}

func stepRange(steps []stepAccuracy) string {
	if len(steps) == 1 {
		return fmt.Sprint(steps[0].step)
	}
	return fmt.Sprintf("%d–%d", steps[0].step, steps[len(steps)-1].step)
}

// hopMetrics returns the validation's EM by hop count, in the order the
// validator gave them (`ssp train`'s sorts them by hop count).
func hopMetrics(m Metrics) Metrics {
	var out Metrics
	for _, x := range m {
		if strings.HasPrefix(x.Name, "eval/em_hops_") {
			out = append(out, x)
		}
	}
	return out
}
