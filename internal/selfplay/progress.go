package selfplay

import (
	"fmt"
	"io"
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
