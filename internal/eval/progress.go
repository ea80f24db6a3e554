package eval

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress reports a run while it goes: examples done, tokens generated,
// tokens/s, elapsed time and the time left. A line is written at every
// finished batch and, while a batch is generating, at most once per
// Interval as tokens arrive, so a slow model is never silent.
type Progress struct {
	w        io.Writer
	Interval time.Duration // between token lines; 0 means 10 s

	mu             sync.Mutex
	now            func() time.Time
	total, resumed int // examples in the run, examples done before this process
	done, tokens   int // examples and tokens done by this process
	start, last    time.Time
}

// NewProgress reports on w.
func NewProgress(w io.Writer) *Progress { return &Progress{w: w, now: time.Now} }

// begin starts the clock for total examples, resumed of them already done.
func (p *Progress) begin(total, resumed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.resumed = total, resumed
	p.start = p.now()
	p.last = p.start
	if resumed > 0 {
		fmt.Fprintf(p.w, "eval: resuming, %d/%d examples already done\n", resumed, total)
	}
}

// AddTokens counts n generated tokens; the solver calls it as it generates.
func (p *Progress) AddTokens(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens += n
	interval := p.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if now := p.now(); now.Sub(p.last) >= interval {
		p.line(now)
	}
}

// addExamples counts n finished examples and reports.
func (p *Progress) addExamples(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.line(p.now())
}

// line writes the report; p.mu is held.
func (p *Progress) line(now time.Time) {
	p.last = now
	el := now.Sub(p.start)
	done := p.resumed + p.done
	msg := fmt.Sprintf("eval: %d/%d examples", done, p.total)
	if p.tokens > 0 && el > 0 {
		msg += fmt.Sprintf(", %d tokens, %.1f tokens/s", p.tokens, float64(p.tokens)/el.Seconds())
	}
	msg += fmt.Sprintf(", elapsed %s", el.Round(time.Second))
	switch {
	case done == p.total:
	case p.done > 0:
		perExample := el / time.Duration(p.done)
		msg += fmt.Sprintf(", %s per example, ETA %s", perExample.Round(100*time.Millisecond),
			(perExample * time.Duration(p.total-done)).Round(time.Second))
	default:
		msg += ", ETA after the first batch"
	}
	fmt.Fprintln(p.w, msg)
}
