package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/agent/agenttest"
	"github.com/ssp-project/ssp/internal/search"
)

var testDocs = []search.Document{
	{ID: "1", Contents: "\"Lake Varn\"\nLake Varn lies north of Osk."},
	{ID: "2", Contents: "\"Osk\"\nOsk is a harbour town founded by Mira Tal."},
}

// replyByTurn answers the n-th turn (counted by inserted information blocks)
// with turns[n].
func replyByTurn(turns ...string) func(string) string {
	return func(prompt string) string {
		n := strings.Count(prompt, "<information>")
		if n >= len(turns) {
			return "silence"
		}
		return turns[n]
	}
}

func baseConfig() Config {
	return Config{FinalTag: "answer", Search: true, MaxTurns: 4, MaxTokensPerTurn: 200,
		MaxResponseTokens: 2000, TopK: 2, MaxInformationChars: 1000, Temperature: 0.7, EOSTokenIDs: []int32{agenttest.EOS}}
}

func TestRunSearchThenAnswer(t *testing.T) {
	tok := agenttest.CharTokenizer{}
	policy := &agenttest.ScriptedPolicy{LogProb: -0.25, Reply: replyByTurn(
		"<think>find it</think><search>draft <search>lake varn</search>",
		"<answer>Osk</answer>",
	)}
	searcher := &agenttest.MemorySearcher{Docs: testDocs}
	prompt := tok.Encode("Q: where? ")
	trajs, err := Run(context.Background(), policy, tok, searcher, [][]int32{prompt, prompt}, baseConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(searcher.Calls) != 1 || len(searcher.Calls[0]) != 2 {
		t.Fatalf("search calls = %v, want one batch of 2 queries", searcher.Calls)
	}
	tr := trajs[0]
	if tr.Finish != FinishAnswer || tr.Turns != 2 {
		t.Fatalf("finish=%s turns=%d", tr.Finish, tr.Turns)
	}
	if got := tr.Queries(); len(got) != 1 || got[0] != "lake varn" {
		t.Fatalf("queries = %q, want the last search of the turn", got)
	}
	if len(tr.Documents()) != 1 || tr.Documents()[0].ID != "1" {
		t.Fatalf("documents = %+v", tr.Documents())
	}
	if len(tr.Tokens) != len(tr.LossMask) || len(tr.Tokens) != len(tr.LogProbs) {
		t.Fatalf("lengths: tokens %d mask %d logprobs %d", len(tr.Tokens), len(tr.LossMask), len(tr.LogProbs))
	}
	// The mask is 1 exactly on generated characters: the text under mask 1
	// is the two turns, the text under mask 0 is the prompt and the
	// inserted information block.
	var gen, other []int32
	for i, id := range tr.Tokens {
		if tr.LossMask[i] == 1 {
			gen = append(gen, id)
			if tr.LogProbs[i] != -0.25 {
				t.Fatalf("token %d: log-prob %v", i, tr.LogProbs[i])
			}
		} else {
			other = append(other, id)
			if tr.LogProbs[i] != 0 {
				t.Fatalf("token %d: log-prob %v outside the mask", i, tr.LogProbs[i])
			}
		}
	}
	wantGen := "<think>find it</think><search>draft <search>lake varn</search><answer>Osk</answer>"
	if tr.Generated != wantGen {
		t.Fatalf("Generated = %q", tr.Generated)
	}
	if got := tok.Decode(gen); got != wantGen {
		t.Fatalf("generated text = %q", got)
	}
	wantOther := "Q: where? \n\n<information>" + search.FormatHits([]search.Hit{{Document: testDocs[0], Score: 2}}) + "</information>\n\n"
	if got := tok.Decode(other); got != wantOther {
		t.Fatalf("unmasked text = %q, want %q", got, wantOther)
	}
	if tr.GeneratedTokens != len(gen) {
		t.Fatalf("GeneratedTokens = %d, want %d", tr.GeneratedTokens, len(gen))
	}
	if !strings.HasSuffix(tr.Response, "<answer>Osk</answer>") {
		t.Fatalf("response = %q", tr.Response)
	}
	if policy.Requests[0].Temperature != 0.7 {
		t.Fatalf("temperature not applied: %v", policy.Requests[0].Temperature)
	}
}

// TestRunOnToken checks that OnToken reports every generated token to the
// trajectory that sampled it, across turns.
func TestRunOnToken(t *testing.T) {
	tok := agenttest.CharTokenizer{}
	policy := &agenttest.ScriptedPolicy{Reply: func(prompt string) string {
		if strings.Contains(prompt, "short") {
			return "<answer>x</answer>"
		}
		return replyByTurn("<search>lake varn</search>", "<answer>Osk</answer>")(prompt)
	}}
	cfg := baseConfig()
	counts := map[int]int{}
	cfg.OnToken = func(i int, _ int32) { counts[i]++ }
	trajs, err := Run(context.Background(), policy, tok, &agenttest.MemorySearcher{Docs: testDocs},
		[][]int32{tok.Encode("short? "), tok.Encode("long? ")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range trajs {
		if counts[i] != tr.GeneratedTokens || tr.GeneratedTokens == 0 {
			t.Errorf("trajectory %d: OnToken saw %d tokens, generated %d", i, counts[i], tr.GeneratedTokens)
		}
	}
}

func TestRunFinishReasons(t *testing.T) {
	tok := agenttest.CharTokenizer{}
	searcher := &agenttest.MemorySearcher{Docs: testDocs}
	tests := []struct {
		name   string
		reply  string
		mutate func(*Config)
		want   FinishReason
		turns  int
	}{
		{"answer", "<answer>x</answer>", nil, FinishAnswer, 1},
		{"question", "<question>who?</question>", func(c *Config) { c.FinalTag = "question" }, FinishQuestion, 1},
		{"eos without tag", "I give up", nil, FinishNoTag, 1},
		{"empty search", "<search> </search>", nil, FinishNoTag, 1},
		{"turn limit", "<search>osk</search>", func(c *Config) { c.MaxTurns = 3 }, FinishTurnLimit, 3},
		{"turn length", "<think>" + strings.Repeat("a", 100), func(c *Config) { c.MaxTokensPerTurn = 20 }, FinishTurnLength, 4},
		{"cut turns fill the response", "<think>" + strings.Repeat("a", 100), func(c *Config) {
			c.MaxTokensPerTurn, c.MaxResponseTokens = 20, 50
		}, FinishLength, 3},
		{"response length", "<search>osk</search>", func(c *Config) { c.MaxResponseTokens = 60 }, FinishLength, 1},
		{"search disabled", "<search>osk</search><answer>x</answer>", func(c *Config) { c.Search = false }, FinishAnswer, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			policy := &agenttest.ScriptedPolicy{Reply: func(string) string { return tt.reply }}
			trajs, err := Run(context.Background(), policy, tok, searcher, [][]int32{tok.Encode("p")}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tr := trajs[0]
			if tr.Finish != tt.want || tr.Turns != tt.turns {
				t.Fatalf("finish=%s turns=%d, want %s %d (response %q)", tr.Finish, tr.Turns, tt.want, tt.turns, tr.Response)
			}
			if tt.name == "response length" && (len(tr.Searches) != 1 || len(tr.Documents()) != 0) {
				t.Fatalf("unshown results recorded: %+v", tr.Searches)
			}
			if n := len(tr.Tokens) - tr.PromptLen; n > cfg.MaxResponseTokens {
				t.Fatalf("response has %d tokens, budget %d", n, cfg.MaxResponseTokens)
			}
		})
	}
}

// continuing plays a script of turns (one per inserted information block)
// the way a model continues its text: each call returns what is left of
// the current turn after what the prompt already holds of it.
func continuing(turns ...string) func(string) string {
	return func(prompt string) string {
		n := strings.Count(prompt, "<information>")
		written := strings.TrimPrefix(prompt, "p")
		if i := strings.LastIndex(prompt, "</information>\n\n"); i >= 0 {
			written = prompt[i+len("</information>\n\n"):]
		}
		if n >= len(turns) || !strings.HasPrefix(turns[n], written) {
			return "off script"
		}
		return turns[n][len(written):]
	}
}

// A turn cut at MaxTokensPerTurn is continued by the next turn, which
// counts against MaxTurns; a stop string cut in two is still found, and
// the trajectory's text is the uncut script.
func TestRunContinuesCutTurns(t *testing.T) {
	tok := agenttest.CharTokenizer{}
	think := "<think>" + strings.Repeat("a", 48) + "</think>" // 63 characters
	turns := []string{think + "<search>osk</search>", "<answer>Osk</answer>"}
	// With 20 tokens per turn, turns 1-4 write the first 80 characters,
	// ending inside "</search>" (characters 75-83); turn 5 writes the rest,
	// which the model's stop check misses (the model runs on to its EOS),
	// turn 6 answers.
	policy := &agenttest.ScriptedPolicy{LogProb: -0.5, Reply: continuing(turns...)}
	searcher := &agenttest.MemorySearcher{Docs: testDocs}
	cfg := baseConfig()
	cfg.MaxTurns, cfg.MaxTokensPerTurn = 10, 20
	trajs, err := Run(context.Background(), policy, tok, searcher, [][]int32{tok.Encode("p")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := trajs[0]
	if tr.Finish != FinishAnswer || tr.Turns != 6 {
		t.Fatalf("finish=%s turns=%d, want answer after 6 turns (response %q)", tr.Finish, tr.Turns, tr.Response)
	}
	if q := tr.Queries(); len(q) != 1 || q[0] != "osk" {
		t.Fatalf("queries %q, want [osk]", q)
	}
	if want := turns[0] + turns[1]; tr.Generated != want || tr.GeneratedTokens != len(want) {
		t.Fatalf("generated %q (%d tokens), want %q", tr.Generated, tr.GeneratedTokens, want)
	}
	if !strings.HasPrefix(tr.Response, turns[0]+"\n\n<information>") {
		t.Fatalf("response %q", tr.Response)
	}

	// The same trajectory with too few turns ends in the cut turn.
	cfg.MaxTurns = 3
	trajs, err = Run(context.Background(), policy, tok, searcher, [][]int32{tok.Encode("p")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tr := trajs[0]; tr.Finish != FinishTurnLength || tr.Turns != 3 || tr.GeneratedTokens != 60 {
		t.Fatalf("finish=%s turns=%d tokens=%d, want turn_length after 3 turns of 20", tr.Finish, tr.Turns, tr.GeneratedTokens)
	}
}

func TestRunInformationTruncated(t *testing.T) {
	tok := agenttest.CharTokenizer{}
	cfg := baseConfig()
	cfg.MaxInformationChars = 10
	policy := &agenttest.ScriptedPolicy{Reply: replyByTurn("<search>osk</search>", "<answer>a</answer>")}
	trajs, err := Run(context.Background(), policy, tok, &agenttest.MemorySearcher{Docs: testDocs}, [][]int32{tok.Encode("p")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := FirstTagBody(trajs[0].Response, "information")
	if !ok || len(info) > 10 {
		t.Fatalf("information %q (ok=%v) exceeds 10 characters", info, ok)
	}
}

func TestRunErrors(t *testing.T) {
	tok := agenttest.CharTokenizer{}
	policy := &agenttest.ScriptedPolicy{Reply: func(string) string { return "<search>osk</search>" }}
	boom := errors.New("index offline")
	_, err := Run(context.Background(), policy, tok, &agenttest.MemorySearcher{Err: boom}, [][]int32{tok.Encode("p")}, baseConfig())
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the searcher's error", err)
	}
	if _, err := Run(context.Background(), policy, tok, nil, nil, baseConfig()); err == nil {
		t.Fatal("search enabled without a searcher: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, policy, tok, &agenttest.MemorySearcher{}, [][]int32{tok.Encode("p")}, baseConfig()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestRunTrajectorySettingsAndSearchEvents checks what a server relies on:
// each trajectory's own sampling settings reach the generator as row
// settings with a per-turn seed and its turn budget, OnSearch reports each
// search with the documents and the exact text inserted after it, and a
// cancelled trajectory ends as cancelled while the others go on.
//
// Mutations seen to fail it: not filling req.Rows; calling OnSearch
// before the documents are set; skipping the between-turn cancellation
// check.
func TestRunTrajectorySettingsAndSearchEvents(t *testing.T) {
	tok := agenttest.CharTokenizer{}
	policy := &agenttest.ScriptedPolicy{Reply: replyByTurn("<search>lake varn</search>", "<answer>Osk</answer>")}
	searcher := &agenttest.MemorySearcher{Docs: testDocs}
	prompt := tok.Encode("Q: where? ")
	cancelled := false
	cfg := baseConfig()
	cfg.Trajectories = []TrajectorySettings{
		{Temperature: 0.5, TopP: 0.9, Seed: 100},
		{Temperature: 1, Seed: 200, Cancelled: func() bool { return cancelled }},
	}
	type event struct {
		i        int
		call     SearchCall
		inserted string
	}
	var events []event
	cfg.OnSearch = func(i int, call SearchCall, inserted string) {
		events = append(events, event{i, call, inserted})
		cancelled = true // the second client leaves once the first results are in
	}
	trajs, err := Run(context.Background(), policy, tok, searcher, [][]int32{prompt, prompt}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if trajs[0].Finish != FinishAnswer || trajs[1].Finish != FinishCancelled {
		t.Fatalf("finishes %q and %q, want answer and cancelled", trajs[0].Finish, trajs[1].Finish)
	}
	if len(policy.Requests) != 2 {
		t.Fatalf("%d generate calls, want 2", len(policy.Requests))
	}
	first, second := policy.Requests[0], policy.Requests[1]
	if len(first.Rows) != 2 || first.Rows[0].Temperature != 0.5 || first.Rows[0].TopP != 0.9 || first.Rows[1].Temperature != 1 {
		t.Fatalf("first turn rows %+v", first.Rows)
	}
	if first.Rows[0].Seed != 100+1_000_003 || second.Rows[0].Seed != 100+2*1_000_003 || first.Rows[0].MaxNewTokens != 200 {
		t.Errorf("row seeds %d then %d, budget %d: want the trajectory's seed plus the turn's offset and the turn budget",
			first.Rows[0].Seed, second.Rows[0].Seed, first.Rows[0].MaxNewTokens)
	}
	if len(second.Prompts) != 1 || len(second.Rows) != 1 {
		t.Errorf("second turn ran %d prompts (%d rows), want only the trajectory not cancelled", len(second.Prompts), len(second.Rows))
	}
	if len(events) != 2 {
		t.Fatalf("%d search events, want one per trajectory", len(events))
	}
	for _, e := range events {
		want := InformationText([]search.Hit{{Document: testDocs[0]}}, cfg.MaxInformationChars)
		if e.call.Query != "lake varn" || len(e.call.Documents) != 1 || e.call.Documents[0].ID != "1" {
			t.Errorf("trajectory %d: search event %+v", e.i, e.call)
		}
		if e.inserted != want || !strings.Contains(trajs[e.i].Response, want) {
			t.Errorf("trajectory %d: inserted %q, want %q as in the response", e.i, e.inserted, want)
		}
	}
	if _, err := Run(context.Background(), policy, tok, searcher, [][]int32{prompt}, cfg); err == nil {
		t.Error("two trajectory settings for one prompt accepted")
	}
}
