package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/judge"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/world"
)

// The oracle reads the RAG prompts the game really sends (every prompt set)
// through the judge client the game really uses, answers a question in the
// world's wordings with its chain's end when a document names it, and
// "unknown" when none does or the chain breaks; grading prompts get
// "Incorrect". Mutations checked: answering without the documents check,
// and parsing the question from the first "Question:" instead of the last,
// each fail a case below.
func TestOracleAnswersFromTheWorld(t *testing.T) {
	g := tinyWorld(t)
	srv := httptest.NewServer(newHandler(g, 1))
	defer srv.Close()
	j, err := judge.New(judge.Config{BaseURL: srv.URL, Model: "oracle", MaxTokens: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()

	var q world.Question
	for _, b := range g.Derive().Benchmark {
		if b.Hops == 2 {
			q = b
			break
		}
	}
	if q.Question == "" {
		t.Fatal("the tiny world has no two-hop benchmark question")
	}
	answer := q.Answers[0]
	// A document that names the answer, and one that does not but whose
	// text holds a decoy question line, as a proposer's page might.
	naming := search.Document{ID: "1", Contents: "\"Page\"\nThe chain ends at " + answer + "."}
	decoy := search.Document{ID: "2", Contents: "\"Other\"\nQuestion: Who is nobody?"}

	for _, set := range []string{selfplay.PromptsSSPShort, selfplay.PromptsSSP, selfplay.PromptsMinimal} {
		prompts, err := selfplay.Prompts(set)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name     string
			question string
			docs     []search.Document
			want     string
		}{
			{"answer named", q.Question, []search.Document{decoy, naming}, "<answer> " + answer + " </answer>"},
			{"answer not in the documents", q.Question, []search.Document{decoy}, "<answer> unknown </answer>"},
			{"outside the wordings", "What colour is the sky over " + answer + "?", []search.Document{naming}, "<answer> unknown </answer>"},
		} {
			system, user := prompts.RAG(c.question, c.docs)
			reply, err := j.Chat(context.Background(), system, user, 64, 0)
			if err != nil {
				t.Fatal(err)
			}
			if reply != c.want {
				t.Errorf("%s, %s: reply %q, want %q", set, c.name, reply, c.want)
			}
		}
	}

	ok, err := j.IsCorrect(context.Background(), q.Question, "someone else", q.Answers)
	if err != nil || ok {
		t.Errorf("grading prompt: got %v, %v; want Incorrect", ok, err)
	}
}

// tinyWorld is the tiny world of seed 1, whose questions the tests ask.
func tinyWorld(t *testing.T) *world.Graph {
	t.Helper()
	g, err := world.Generate(1, world.Sizes["tiny"])
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// A chain that breaks (a relation its entity does not have) is answered
// "unknown" even when the documents name the answer of the question it
// was made from. Mutation seen to fail: answering a broken chain with a
// name the documents show.
func TestOracleBrokenChain(t *testing.T) {
	g := tinyWorld(t)
	o := &oracle{g: g, minLinks: 1}
	var broken string
	var names []string
	for _, b := range g.Derive().Benchmark {
		// Put "the founder of" before the question's first noun phrase
		// that starts with "the", and keep the first one the world says
		// breaks (the entity there founded nothing).
		candidate := strings.Replace(b.Question, " the ", " the founder of the ", 1)
		if end, _, ok := g.Resolve(candidate); ok && end == nil {
			broken, names = candidate, b.Answers
			break
		}
	}
	if broken == "" {
		t.Fatal("no broken chain found among the tiny world's benchmark questions")
	}
	docs := "Documents:\n" + strings.Join(names, " ") + "\n"
	if got := o.reply(docs + "Question: " + broken + "\n"); got != "<answer> unknown </answer>" {
		t.Errorf("broken chain %q: reply %q", broken, got)
	}
}

// With --min-links 3 a right two-link question is answered "unknown", and
// a right three-link one still gets its answer.
func TestOracleMinLinks(t *testing.T) {
	g := tinyWorld(t)
	o := &oracle{g: g, minLinks: 3}
	seen := map[int]bool{}
	for _, q := range g.Derive().Benchmark {
		if q.Hops != 2 && q.Hops != 3 || seen[q.Hops] {
			continue
		}
		seen[q.Hops] = true
		want := "<answer> unknown </answer>"
		if q.Hops == 3 {
			want = "<answer> " + q.Answers[0] + " </answer>"
		}
		if got := o.reply("Documents:\nOn " + q.Answers[0] + ".\nQuestion: " + q.Question + "\n"); got != want {
			t.Errorf("%d links, --min-links 3: reply %q, want %q", q.Hops, got, want)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("found questions of %v links, want 2 and 3", seen)
	}
}
