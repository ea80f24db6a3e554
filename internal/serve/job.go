package serve

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

// Job is an admitted request. The worker pushes its tokens, searches and
// end as they happen, without waiting for the reader; Next turns them into
// events in the reader's goroutine, so decoding text never slows the batch.
type Job struct {
	m         *Model
	ctx       context.Context
	req       Request
	prompt    []int32
	submitted time.Time

	mu       sync.Mutex
	items    []item
	ready    chan struct{} // signalled after each push
	released atomic.Bool
	left     atomic.Bool // the reader abandoned the job

	// Read side, used by Next's goroutine only.
	content *contentStream        // chat: the completion's text
	text    *tokenizer.TextStream // agent: generated text since the last search
	done    bool
}

// item is one thing the worker reports.
type item struct {
	token    int32
	isToken  bool
	search   *agent.SearchCall
	inserted string
	result   *Result
	err      error
	last     bool
}

// Event is what a job reports to its reader, in order.
type Event struct {
	// Text is new text: of the completion for a chat request; of the
	// trajectory for an agent request (generated text, and with a search
	// the results inserted after it).
	Text string
	// Search is a search call of the agent with the documents it was shown.
	Search *agent.SearchCall
	// Result ends the job.
	Result *Result
}

// Result is a finished request.
type Result struct {
	// Content is the completion's text without a stop string, or the
	// agent's final answer ("" when it gave none).
	Content string
	// FinishReason is OpenAI's: "stop" (EOS, stop string, or the agent's
	// final tag) or "length" (a token bound).
	FinishReason     string
	PromptTokens     int
	CompletionTokens int // tokens the model sampled

	// Agent requests only.
	InsertedTokens int // tokens of search results inserted into the trajectory
	Trajectory     string
	Searches       []agent.SearchCall
	AgentFinish    agent.FinishReason
	Turns          int
}

// Next returns the job's next event; the one with a Result is the last,
// after which Next returns io.EOF. When the request's context ends first,
// the job is abandoned (its row takes no more tokens and its admission is
// given back) and the context's error is returned.
func (j *Job) Next() (Event, error) {
	for !j.done {
		j.mu.Lock()
		if len(j.items) == 0 {
			j.mu.Unlock()
			select {
			case <-j.ready:
				continue
			case <-j.ctx.Done():
				j.Abandon()
				j.done = true
				return Event{}, j.ctx.Err()
			}
		}
		it := j.items[0]
		j.items = j.items[1:]
		j.mu.Unlock()
		if it.last {
			j.done = true
		}
		if it.err != nil {
			return Event{}, it.err
		}
		if ev, ok := j.event(it); ok {
			return ev, nil
		}
	}
	return Event{}, io.EOF
}

// event turns an item into an event; ok is false when it adds nothing yet
// (a token that ends inside a character, or inside a possible stop string).
func (j *Job) event(it item) (ev Event, ok bool) {
	switch {
	case it.isToken && j.req.Agent:
		ev.Text = j.text.Add(it.token)
	case it.isToken:
		ev.Text = j.content.add(it.token)
	case it.search != nil:
		ev.Text = j.text.Flush() + it.inserted
		j.text = tokenizer.NewTextStream(j.m.cfg.Tokenizer.Decode)
		ev.Search = it.search
		return ev, true
	case it.result != nil && j.req.Agent:
		ev.Text = j.text.Flush()
		ev.Result = it.result
		return ev, true
	case it.result != nil:
		ev.Text = j.content.finish()
		it.result.Content = j.content.final
		ev.Result = it.result
		return ev, true
	}
	return ev, ev.Text != ""
}

// Abandon gives up the job: its row takes no more tokens, a waiting job is
// dropped, and its admission is given back at once.
func (j *Job) Abandon() {
	j.left.Store(true)
	j.release()
}

// cancelled reports whether the job's reader has gone.
func (j *Job) cancelled() bool { return j.left.Load() || j.ctx.Err() != nil }

func (j *Job) release() {
	if j.released.CompareAndSwap(false, true) {
		j.m.admitted.Add(-1)
	}
}

func (j *Job) push(it item) {
	j.mu.Lock()
	j.items = append(j.items, it)
	j.mu.Unlock()
	select {
	case j.ready <- struct{}{}:
	default:
	}
}

// finish reports the job's end and gives its admission back.
func (j *Job) finish(r *Result, err error) {
	j.push(item{result: r, err: err, last: true})
	j.release()
}

// contentStream is a chat completion's text as it grows: a tail that may
// still become a stop string, or a character cut between tokens, is held
// back; the text ends before the first stop string.
type contentStream struct {
	decode func([]int32) string
	stops  []string
	ids    []int32
	sent   int    // bytes of text returned so far
	final  string // the whole text, once finished
}

func newContentStream(decode func([]int32) string, stops []string) *contentStream {
	return &contentStream{decode: decode, stops: stops}
}

func (c *contentStream) add(id int32) string {
	c.ids = append(c.ids, id)
	return c.advance(false)
}

// finish returns the rest of the text; c.final then holds all of it.
func (c *contentStream) finish() string { return c.advance(true) }

func (c *contentStream) advance(final bool) string {
	text := c.decode(c.ids)
	visible, stopped := cutAtStop(text, c.stops)
	if final || stopped {
		c.final = visible
	} else {
		visible = strings.TrimRight(visible, "\uFFFD")
		visible = visible[:len(visible)-stopPrefixSuffix(visible, c.stops)]
	}
	if len(visible) <= c.sent {
		return ""
	}
	piece := visible[c.sent:]
	c.sent = len(visible)
	return piece
}

// cutAtStop returns text before the earliest stop string, and whether one
// was found.
func cutAtStop(text string, stops []string) (string, bool) {
	cut := -1
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut < 0 {
		return text, false
	}
	return text[:cut], true
}

// stopPrefixSuffix is the length of the longest end of text that begins
// some stop string: text that may yet turn out to be a stop.
func stopPrefixSuffix(text string, stops []string) int {
	longest := 0
	for _, s := range stops {
		for n := min(len(s)-1, len(text)); n > longest; n-- {
			if strings.HasSuffix(text, s[:n]) {
				longest = n
				break
			}
		}
	}
	return longest
}
