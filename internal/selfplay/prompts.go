package selfplay

import (
	"fmt"
	"strings"

	"github.com/ssp-project/ssp/internal/search"
)

// The prompts share the Search-R1 tag protocol: <think>, <search>,
// <information> (inserted by the search loop), and a role's final tag.
// Each prompt is a system message (the protocol) and a user message (the
// task), rendered by the model's chat template.

const proposerSystem = `You write quiz questions that can only be answered by searching a document collection.
You are given the answer; your job is to write a question whose one and only correct answer is that answer.

Protocol:
- Reason inside <think> and </think> whenever you need to.
- Search the collection by writing <search> your query </search>. The results come back between <information> and </information>.
- Search several times: follow a chain of facts, each search building on what the previous one found, so that answering the question takes the same chain of searches.
- Finish by writing the question alone between <question> and </question>.

The question must be answerable from the documents you found, must have exactly the given answer, and must not contain the answer or any other name for it.`

const solverSystem = `Answer the question by searching a document collection.

Protocol:
- Reason inside <think> and </think> whenever you need to.
- When you lack a fact, search by writing <search> your query </search>. The results come back between <information> and </information>. Search as often as you need.
- When you know the answer, write only the short final answer between <answer> and </answer>, for example <answer> Paris </answer>.`

const ragSystem = `Answer the question from the documents given. Do not search.
Reason inside <think> and </think> if you need to, then write only the short final answer between <answer> and </answer>, for example <answer> Paris </answer>.`

// ProposerMessages returns the proposer's system and user messages for one
// target answer. hops is the number of searches asked for.
func ProposerMessages(seed Seed, hops int) (system, user string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Answer: %s\n", seed.Answers[0])
	if len(seed.Answers) > 1 {
		fmt.Fprintf(&b, "Other names for it (also forbidden in the question): %s\n", strings.Join(seed.Answers[1:], "; "))
	}
	searches := "searches"
	if hops == 1 {
		searches = "search"
	}
	fmt.Fprintf(&b, "Write a question that needs about %d %s to answer.\n", hops, searches)
	if seed.Example != "" {
		fmt.Fprintf(&b, "A question in the style wanted, for another answer: %s\n", seed.Example)
	}
	return proposerSystem, b.String()
}

// SolverMessages returns the solver's messages for one question.
func SolverMessages(question string) (system, user string) {
	return solverSystem, "Question: " + question + "\n"
}

// RAGMessages returns the verification messages: the question with the
// given documents, formatted as search results.
func RAGMessages(question string, docs []search.Document) (system, user string) {
	hits := make([]search.Hit, len(docs))
	for i, d := range docs {
		hits[i] = search.Hit{Document: d}
	}
	return ragSystem, "Documents:\n" + search.FormatHits(hits) + "\nQuestion: " + question + "\n"
}

// PlainChat renders messages without a chat template, for base models and
// tests: the system text, a blank line, the user text.
func PlainChat(system, user string) (string, error) {
	return system + "\n\n" + user + "\n", nil
}
