package serve

import (
	"context"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/eval"
)

// TestAgentMatchesEval asks the served agent benchmark questions and
// compares each answer with what `ssp eval`'s solver (eval.AgentSolver,
// the same agent settings and prompts) predicts for it: the same answer,
// trajectory and searches, with every search's documents as the model
// was shown them.
//
// Mutations seen to fail it: another solver prompt (the question given
// as "Q: " and the question); leaving the documents out of the searches.
func TestAgentMatchesEval(t *testing.T) {
	ts := startServer(t, 4, 4, nil)
	questions := benchmarkQuestions(t, 4)
	acfg, prompts := builtinAgent()
	solve := eval.AgentSolver(fixture.model, fixture.tok, fixture.index, prompts.Solver, acfg)
	want, err := solve(context.Background(), questions)
	if err != nil {
		t.Fatal(err)
	}
	searched := false
	for i, q := range questions {
		c := ts.complete(t, map[string]any{"model": "builtin-agent",
			"messages": []map[string]any{{"role": "system", "content": "ignored"}, {"role": "user", "content": q.Question}}})
		msg := c.Choices[0].Message
		if c.SSP == nil {
			t.Fatalf("question %d: no ssp field", i)
		}
		if msg.Content != want[i].Prediction || c.SSP.Trajectory != want[i].Response || msg.ReasoningContent != want[i].Response {
			t.Errorf("question %q: served answer %q after %q, eval %q after %q", q.Question, msg.Content, c.SSP.Trajectory, want[i].Prediction, want[i].Response)
		}
		if len(c.SSP.Searches) != want[i].Searches || c.SSP.Turns != want[i].Turns || c.SSP.Question != q.Question {
			t.Errorf("question %d: %d searches in %d turns, eval %d in %d", i, len(c.SSP.Searches), c.SSP.Turns, want[i].Searches, want[i].Turns)
		}
		for _, s := range c.SSP.Searches {
			if !strings.Contains(c.SSP.Trajectory, "<search> "+s.Query+" </search>") && !strings.Contains(c.SSP.Trajectory, s.Query) {
				t.Errorf("query %q is not in the trajectory", s.Query)
			}
			for _, d := range s.Documents {
				searched = true
				if d.ID == "" || d.Title == "" || !strings.Contains(c.SSP.Trajectory, d.Title) {
					t.Errorf("document %+v: want an id, and a title that the trajectory shows", d)
				}
			}
		}
		wantFinish := "stop"
		if want[i].FinishReason == eval.FinishTurnLimit || want[i].FinishReason == eval.FinishLength {
			wantFinish = "length"
		}
		if c.Choices[0].FinishReason != wantFinish || c.Usage.CompletionTokens != want[i].Tokens || c.Usage.PromptTokens == 0 {
			t.Errorf("question %d: finish %q, %d completion tokens; eval %s, %d tokens", i, c.Choices[0].FinishReason, c.Usage.CompletionTokens, want[i].FinishReason, want[i].Tokens)
		}
	}
	if !searched {
		t.Error("no question was answered with a search that returned documents")
	}
}

// TestAgentStream checks the agent's stream: the trajectory arrives as
// reasoning_content deltas whose concatenation is the final trajectory,
// each search comes in its own chunk with its documents as soon as its
// results are inserted (before the answer), and the last chunk carries
// the answer as content with the whole result, as the unstreamed answer
// does. "agent": true on the plain model name selects the same agent.
//
// Mutations seen to fail it: leaving a search's inserted results out of
// its chunk; not sending the search chunks.
func TestAgentStream(t *testing.T) {
	ts := startServer(t, 4, 4, nil)
	q := benchmarkQuestions(t, 2)[1].Question
	plain := ts.complete(t, map[string]any{"model": "builtin-agent", "messages": []map[string]any{{"role": "user", "content": q}}})
	chunks := ts.stream(t, map[string]any{"model": "builtin", "agent": true, "messages": []map[string]any{{"role": "user", "content": q}}})
	var trajectory strings.Builder
	var searches []string
	var answer, finish string
	var final *testSSP
	for i, ch := range chunks {
		d := ch.Choices[0].Delta
		trajectory.WriteString(d.ReasoningContent)
		if ch.SSP != nil && ch.SSP.Search != nil {
			if answer != "" || strings.Contains(d.ReasoningContent, "Doc 1") != (len(ch.SSP.Search.Documents) > 0) {
				t.Errorf("chunk %d: search %+v after the answer, or its documents unlike the results inserted: %q", i, ch.SSP.Search, d.ReasoningContent)
			}
			if !strings.Contains(d.ReasoningContent, "<information>") {
				t.Errorf("chunk %d: search without the results inserted after it: %q", i, d.ReasoningContent)
			}
			searches = append(searches, ch.SSP.Search.Query)
		}
		if f := ch.Choices[0].FinishReason; f != nil {
			finish, final = *f, ch.SSP
			if d.Content != nil {
				answer = *d.Content
			}
		}
	}
	if final == nil {
		t.Fatal("no final chunk with the result")
	}
	if trajectory.String() != final.Trajectory || final.Trajectory != plain.SSP.Trajectory {
		t.Errorf("streamed trajectory %q, final %q, unstreamed %q", trajectory.String(), final.Trajectory, plain.SSP.Trajectory)
	}
	if answer != plain.Choices[0].Message.Content || finish != plain.Choices[0].FinishReason {
		t.Errorf("streamed answer %q (%s), unstreamed %q (%s)", answer, finish, plain.Choices[0].Message.Content, plain.Choices[0].FinishReason)
	}
	if len(searches) == 0 || len(searches) != len(final.Searches) {
		t.Fatalf("%d search chunks, %d searches in the result", len(searches), len(final.Searches))
	}
	for i, s := range final.Searches {
		if searches[i] != s.Query {
			t.Errorf("search %d: streamed %q, result %q", i, searches[i], s.Query)
		}
	}
}
