package eval

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress reports a run while it goes: examples done, tokens generated,
// tokens/s, elapsed time and the time left. A line is written at every
// finished batch and, in between, once per Interval — also while the
// prompts are read before the first token — so a slow model is never
// silent.
type Progress struct {
	w        io.Writer
	Interval time.Duration // between token lines; 0 means 10 s

	mu             sync.Mutex
	now            func() time.Time
	total, resumed int // examples in the run, examples done before this process
	done, tokens   int // examples and tokens done by this process
	start, last    time.Time
	stop           chan struct{}
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
	p.stop = make(chan struct{})
	go p.tick(p.stop, p.interval())
}

// tick writes a line every interval in which nothing else was written.
func (p *Progress) tick(stop chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			if now := p.now(); now.Sub(p.last) >= interval {
				p.line(now)
			}
			p.mu.Unlock()
		}
	}
}

// end stops the ticker.
func (p *Progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
}

func (p *Progress) interval() time.Duration {
	if p.Interval <= 0 {
		return 10 * time.Second
	}
	return p.Interval
}

// AddTokens counts n generated tokens; the solver calls it as it generates.
func (p *Progress) AddTokens(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens += n
	if now := p.now(); now.Sub(p.last) >= p.interval() {
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
	switch {
	case p.tokens > 0 && el > 0:
		msg += fmt.Sprintf(", %d tokens, %s tokens/s", p.tokens, rate(float64(p.tokens)/el.Seconds()))
	case done < p.total:
		msg += ", no token yet (reading the prompts)"
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

// rate formats a rate with two significant digits below 10, so that a slow
// run reads 0.25 or 0.017, never 0.0.
func rate(x float64) string {
	if x >= 10 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.2g", x)
}
