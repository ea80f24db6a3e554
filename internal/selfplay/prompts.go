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
	return ragSystem, "Documents:\n" + formatDocuments(docs) + "\nQuestion: " + question + "\n"
}

// Prompt sets (game.prompts).
const (
	// PromptsSSPShort is the compact wording above, for instruct models.
	PromptsSSPShort = "ssp-short"
	// PromptsSSP follows the structure of SSP's released prompts (in this
	// project's own words): the proposer is walked through building the
	// question backwards from the answer and shown example questions, the
	// solver gets the Search-R1 instruction in its user message, and the RAG
	// check asks for brief reasoning, then the answer.
	PromptsSSP = "ssp"
	// PromptsMinimal states the protocol in one line per role, for small
	// models trained from scratch on scripted episodes (the built-in
	// model): such a model learns the protocol from examples, not from
	// instructions, and every prompt token costs it training time.
	PromptsMinimal = "minimal"
)

// PromptSet renders the three roles' messages in one wording.
type PromptSet struct {
	Name     string
	Proposer func(seed Seed, hops int) (system, user string)
	Solver   func(question string) (system, user string)
	RAG      func(question string, docs []search.Document) (system, user string)
}

// Prompts returns the named prompt set (game.prompts).
func Prompts(name string) (PromptSet, error) {
	switch name {
	case PromptsSSPShort:
		return PromptSet{Name: name, Proposer: ProposerMessages, Solver: SolverMessages, RAG: RAGMessages}, nil
	case PromptsSSP:
		return PromptSet{Name: name, Proposer: sspProposerMessages, Solver: sspSolverMessages, RAG: sspRAGMessages}, nil
	case PromptsMinimal:
		return PromptSet{Name: name, Proposer: minimalProposerMessages, Solver: minimalSolverMessages, RAG: minimalRAGMessages}, nil
	}
	return PromptSet{}, fmt.Errorf("unknown prompt set %q (want %q, %q or %q)", name, PromptsSSPShort, PromptsSSP, PromptsMinimal)
}

const sspProposerSystem = `You are a question designer. You are given an answer and a number n, and you build a hard question whose single correct answer is that answer and which takes a solver n searches, one after another, to answer.

How to build it:
1. Look at the answer and at n. The answer is where the solver must end up; n is how many links the chain of facts leading there must have.
2. Work backwards from the answer, one link at a time.
   a. Do not search for the answer itself first. Think of something closely tied to it but different: a related event, person, place, property or the group it belongs to. Search for the connection between that and the answer, and take from the results one precise, checkable fact that leads to the answer. That fact is what the solver's last search will find.
   b. Treat the fact you just found as your new target and search for the fact that leads to it. This gives the link before it.
   c. Keep going until the chain has n links. The fact at the far end of the chain, the first one a solver would look up, is the clue your question starts from.
3. Protocol: reason inside <think> and </think> each time you get new information. When you need knowledge you lack, search with <search> query </search>; the top results come back between <information> and </information>. Search as many times as you need. When the chain is complete, write only the question between <question> and </question>.

Example questions of the kind wanted:
%s

Rules for the question:
1. Grounded: every step of the chain rests on what your searches found, never on guesses.
2. No giveaways: the question names neither the answer nor any intermediate fact of the chain.
3. Search needed: general knowledge alone must not be enough to answer it.
4. Chain length: answering it takes exactly the requested number of searches.
5. One answer: each clue is precise enough that the question has exactly one correct answer.`

// sspExampleQuestions are shown when a seed carries no example of its own.
const sspExampleQuestions = `- Which river flows through the city where the composer of the opera that opened the country's first national theatre was born?
- In what year was the bridge completed that links the island where the author of the best-known sea shanty collection lived to the mainland?
- What is the name of the harbour town founded by the sailor whose birthplace lies on the coast the lighthouse keeper's diary describes?`

func sspProposerMessages(seed Seed, hops int) (system, user string) {
	examples := sspExampleQuestions
	if seed.Example != "" {
		examples = seed.Example
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Answer: %s\n", seed.Answers[0])
	if len(seed.Answers) > 1 {
		fmt.Fprintf(&b, "Other names for it (also forbidden in the question): %s\n", strings.Join(seed.Answers[1:], "; "))
	}
	fmt.Fprintf(&b, "Build a question that takes %d searches to answer.\n", hops)
	b.WriteString("Once you have gathered enough to write it, check it against every rule, and above all whether it is too easy. ")
	b.WriteString("When it passes, give the final question between <question> and </question>, for example: ")
	b.WriteString("<question> Which river runs through the birthplace of the architect who designed the oldest surviving lighthouse on the northern coast? </question>\n")
	return fmt.Sprintf(sspProposerSystem, examples), b.String()
}

const sspSolverSystem = "You are a helpful assistant."

func sspSolverMessages(question string) (system, user string) {
	return sspSolverSystem, "Answer the question below. Reason inside <think> and </think> first, and again every time you receive new information. " +
		"If you find you are missing knowledge, query a search engine with <search> query </search>; it returns the top results between <information> and </information>. " +
		"You may search as many times as you like. When no more outside knowledge is needed, give the answer inside <answer> and </answer> without explanation, for example <answer> Beijing </answer>. " +
		"Question: " + question + "\n"
}

func sspRAGMessages(question string, docs []search.Document) (system, user string) {
	return sspSolverSystem, "Answer the question from the materials below; do not search. First reason very briefly, in at most about 50 words, " +
		"then give only the final answer between <answer> and </answer>.\n\nMaterials:\n" + formatDocuments(docs) + "\nQuestion: " + question + "\n"
}

const (
	minimalProposerSystem = "Search with <search> query </search>, then write a question whose answer is the given answer as <question> question </question>."
	minimalSolverSystem   = "Search with <search> query </search>, then answer as <answer> name </answer>."
	minimalRAGSystem      = "Answer from the documents as <answer> name </answer>."
)

func minimalProposerMessages(seed Seed, hops int) (system, user string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Answer: %s\n", seed.Answers[0])
	if len(seed.Answers) > 1 {
		fmt.Fprintf(&b, "Also: %s\n", strings.Join(seed.Answers[1:], "; "))
	}
	fmt.Fprintf(&b, "Hops: %d\n", hops)
	return minimalProposerSystem, b.String()
}

func minimalSolverMessages(question string) (system, user string) {
	return minimalSolverSystem, "Question: " + question + "\n"
}

func minimalRAGMessages(question string, docs []search.Document) (system, user string) {
	return minimalRAGSystem, "Documents:\n" + formatDocuments(docs) + "\nQuestion: " + question + "\n"
}

// formatDocuments lays documents out as search results are shown.
func formatDocuments(docs []search.Document) string {
	hits := make([]search.Hit, len(docs))
	for i, d := range docs {
		hits[i] = search.Hit{Document: d}
	}
	return search.FormatHits(hits)
}

// PlainChat renders messages without a chat template, for base models and
// tests: the system text, a blank line, the user text.
func PlainChat(system, user string) (string, error) {
	return system + "\n\n" + user + "\n", nil
}
