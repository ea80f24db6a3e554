package bootstrap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
	"github.com/ssp-project/ssp/internal/world"
)

// An episode is a scripted trajectory in the exact token layout the agent
// loop produces: the role's prompt rendered by the chat template, then the
// model's turns with the search results inserted between them. Only the
// model's own tokens carry loss, as in self-play.
type episode struct {
	Role   string // "solver", "proposer" or "rag"
	Hops   int
	Tokens []int32
	Mask   []float32
}

// transcript assembles an episode piece by piece, encoding each piece
// separately as the agent loop does (generated turns and inserted results
// are never tokenised together).
type transcript struct {
	tok *tokenizer.Tokenizer
	ep  episode
	// context is the loss weight of the text the model does not write
	// (prompt, inserted results); see Options.ContextWeight.
	context float32
}

func (t *transcript) add(text string, trained bool) {
	ids := t.tok.Encode(text)
	m := t.context
	if trained {
		m = 1
	}
	for range ids {
		t.ep.Mask = append(t.ep.Mask, m)
	}
	t.ep.Tokens = append(t.ep.Tokens, ids...)
}

// episodeMaker writes the three kinds of warm-up episode from the facts of
// the world (never held-out entities).
type episodeMaker struct {
	tok      *tokenizer.Tokenizer
	searcher search.Searcher
	opts     Options
	prompts  selfplay.PromptSet
	rng      *rand.Rand
}

func (e *episodeMaker) prompt(role string, hops int, system, user string) (*transcript, error) {
	text, err := e.tok.SystemUserPrompt(system, user)
	if err != nil {
		return nil, err
	}
	t := &transcript{tok: e.tok, ep: episode{Role: role, Hops: hops}, context: float32(e.opts.ContextWeight)}
	t.add(text, false)
	return t, nil
}

// shownName returns the first of an entity's names that occurs in text (an
// alias counts: passages use both), so that a scripted turn copies the name
// as the model saw it.
func shownName(text string, names []string) (string, bool) {
	for _, n := range names {
		if strings.Contains(text, n) {
			return n, true
		}
	}
	return "", false
}

// searchPaths searches every name of every entity on the questions'
// chains, each distinct name once, in one batch, and returns the hits by
// query.
func (e *episodeMaker) searchPaths(ctx context.Context, qs []world.Question) (map[string][]search.Hit, error) {
	var queries []string
	for _, q := range qs {
		for _, ent := range q.Path() {
			queries = append(queries, ent.Answers()...)
		}
	}
	slices.Sort(queries)
	queries = slices.Compact(queries)
	hits, err := e.searcher.Search(ctx, queries, e.opts.TopK)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: search: %w", err)
	}
	out := make(map[string][]search.Hit, len(queries))
	for i, q := range queries {
		out[q] = hits[i]
	}
	return out, nil
}

// information is what the agent loop would insert for a query's hits.
func (e *episodeMaker) information(hits []search.Hit) string {
	return agent.InformationText(hits, e.opts.MaxInformationChars)
}

// make builds episodes from questions of one or more hops along the chain
// anchor = path[0] → … → path[k] = answer:
//
//   - solver: search path[0], read, search the next entity as the results
//     name it, …, then answer with the name as the last results show it;
//   - proposer, for target path[k]: search the target, then walk the chain
//     back to the anchor one search at a time, then write the question
//     (asked for as many hops as the chain has);
//   - RAG verification: answer the question from the proposer's documents
//     shuffled with noise blocks from other searches, without searching.
//
// Every question gets a solver episode, one in two a proposer and a RAG one.
//
// An episode whose searches do not surface the next entity of the chain is
// dropped rather than teaching the model to guess, and so is one longer than
// the agent settings allow.
func (e *episodeMaker) make(ctx context.Context, qs []world.Question) ([]episode, map[string]int, error) {
	hits, err := e.searchPaths(ctx, qs)
	if err != nil {
		return nil, nil, err
	}
	var blocks [][]search.Hit // every result block, for RAG noise
	for _, h := range hits {
		if len(h) > 0 {
			blocks = append(blocks, h)
		}
	}
	slices.SortFunc(blocks, func(a, b []search.Hit) int { return strings.Compare(a[0].Document.ID, b[0].Document.ID) })

	// Answers by kind, for decoy pages in RAG episodes.
	answersByKind := map[world.Kind][]*world.Entity{}
	for _, q := range qs {
		a := q.Path()[len(q.Path())-1]
		answersByKind[a.Kind] = append(answersByKind[a.Kind], a)
	}

	dropped := map[string]int{}
	var out []episode
	fits := func(t *transcript) bool {
		return len(t.ep.Tokens) <= e.opts.MaxPromptTokens+e.opts.MaxResponseTokens
	}
	for _, q := range qs {
		path := q.Path()
		k := len(path) - 1

		// Solver.
		if e.opts.trainsRole("solver") {
			ep, why, err := e.solver(q, hits, false)
			if err != nil {
				return nil, nil, err
			}
			if why != "" {
				dropped["solver: "+why]++
			} else {
				out = append(out, ep)
			}
		}

		// Proposer and RAG episodes for half the questions when the solver
		// trains too: they are two to three times as long as a solver
		// episode, and the solver's copying is what the base most needs.
		if e.rng.IntN(2) == 1 && e.opts.trainsRole("solver") {
			continue
		}
		if !e.opts.trainsRole("proposer") && !e.opts.trainsRole("rag") {
			continue
		}

		// Proposer: from the target back to the anchor.
		system, user := e.prompts.Proposer(selfplay.Seed{Answers: q.Answers}, k)
		t, err := e.prompt("proposer", k, system, user)
		if err != nil {
			return nil, nil, err
		}
		var docs []search.Hit
		query, ok := path[k].Name, true
		for i := k; i > 0 && ok; i-- {
			info := e.information(hits[query])
			t.add("<search> "+query+" </search>", true)
			t.add(info, false)
			docs = append(docs, search.VisibleHits(hits[query], e.opts.MaxInformationChars)...)
			query, ok = shownName(info, path[i-1].Answers())
		}
		if ok {
			// One more search confirms the anchor's own page, as the
			// question must be answerable from what was retrieved.
			t.add("<search> "+query+" </search>", true)
			t.add(e.information(hits[query]), false)
			docs = append(docs, search.VisibleHits(hits[query], e.opts.MaxInformationChars)...)
		}
		switch {
		case !ok:
			dropped["proposer: a search does not show the previous entity"]++
		case !fits(t):
			dropped["proposer: too long"]++
		case e.opts.trainsRole("proposer"):
			t.add("<question> "+q.Question+" </question>", true)
			out = append(out, t.ep)
		}
		if !ok || !e.opts.trainsRole("rag") {
			continue
		}

		// RAG verification over the proposer's documents and noise.
		if e.opts.RAGDecoyShare > 0 && e.rng.Float64() < e.opts.RAGDecoyShare {
			docs = e.withDecoy(docs, path[k], answersByKind[path[k].Kind], hits)
		}
		for b := 0; b < e.opts.NoiseBlocks && len(blocks) > 0; b++ {
			docs = append(docs, search.VisibleHits(blocks[e.rng.IntN(len(blocks))], e.opts.MaxInformationChars)...)
		}
		ragDocs := documents(docs)
		e.rng.Shuffle(len(ragDocs), func(a, b int) { ragDocs[a], ragDocs[b] = ragDocs[b], ragDocs[a] })
		system, user = e.prompts.RAG(q.Question, ragDocs)
		t, err = e.prompt("rag", k, system, user)
		if err != nil {
			return nil, nil, err
		}
		answer, shown := shownName(user, q.Answers)
		switch {
		case len(t.ep.Tokens) > e.opts.MaxPromptTokens:
			dropped["rag: prompt too long"]++
		case !shown:
			dropped["rag: answer not in the documents"]++
		default:
			t.add("<answer> "+answer+" </answer>", true)
			out = append(out, t.ep)
		}
	}
	return out, dropped, nil
}

// withDecoy adds to a RAG episode's documents the page of another entity
// of the answer's kind, drawn from candidates (see Options.RAGDecoyShare),
// and in one of two episodes takes out the answer's own page. The answer
// then still shows in the page that states the chain's last fact (every
// fact is stated from both of its ends), which the caller checks.
func (e *episodeMaker) withDecoy(docs []search.Hit, answer *world.Entity, candidates []*world.Entity, hits map[string][]search.Hit) []search.Hit {
	var decoy *world.Entity
	for range 8 { // a few draws; a kind with a single answer gets no decoy
		if c := candidates[e.rng.IntN(len(candidates))]; c.ID != answer.ID {
			decoy = c
			break
		}
	}
	if decoy == nil {
		return docs
	}
	if e.rng.IntN(2) == 0 {
		var kept []search.Hit
		for _, h := range docs {
			if !slices.Contains(answer.Answers(), h.Document.Title()) {
				kept = append(kept, h)
			}
		}
		docs = kept
	}
	return append(docs, search.VisibleHits(hits[decoy.Name], e.opts.MaxInformationChars)...)
}

// solver writes the solver's episode for q: search the anchor, read,
// search the next entity as the results name it, …, then answer with the
// name as the last results show it. With short set, each results block is
// cut down to the sentences that name the entity the model must copy next
// and at most two others (a copy drill). why names the reason when the
// episode cannot be built.
func (e *episodeMaker) solver(q world.Question, hits map[string][]search.Hit, short bool) (ep episode, why string, err error) {
	path := q.Path()
	k := len(path) - 1
	system, user := e.prompts.Solver(q.Question)
	t, err := e.prompt("solver", k, system, user)
	if err != nil {
		return episode{}, "", err
	}
	query, ok := path[0].Name, true
	for i := 0; i < k && ok; i++ {
		shown := hits[query]
		if short {
			shown = shortenHits(shown, path[i+1].Answers(), 2, e.rng)
		}
		info := e.information(shown)
		t.add("<search> "+query+" </search>", true)
		t.add(info, false)
		query, ok = shownName(info, path[i+1].Answers())
	}
	switch {
	case !ok:
		return episode{}, "a search does not show the next entity", nil
	case len(t.ep.Tokens) > e.opts.MaxPromptTokens+e.opts.MaxResponseTokens:
		return episode{}, "too long", nil
	}
	t.add("<answer> "+query+" </answer>", true)
	if short {
		t.ep.Role = "drill"
	}
	return t.ep, "", nil
}

// drills builds one copy drill per question: the solver's episode with
// every results block cut to a few sentences (see solver). A drill is the
// real episode's layout, turn for turn, at a fraction of its length, so
// most of its trained tokens are names copied from the question or the
// results: the skill a small model takes longest to find.
func (e *episodeMaker) drills(ctx context.Context, qs []world.Question) ([]episode, map[string]int, error) {
	hits, err := e.searchPaths(ctx, qs)
	if err != nil {
		return nil, nil, err
	}
	dropped := map[string]int{}
	var out []episode
	for _, q := range qs {
		ep, why, err := e.solver(q, hits, true)
		if err != nil {
			return nil, nil, err
		}
		if why != "" {
			dropped["drill: "+why]++
			continue
		}
		out = append(out, ep)
	}
	return out, dropped, nil
}

// shortenHits returns the hits with each document's text cut to the
// sentences that contain one of names, plus at most extra others picked at
// random, in their original order; the title line is kept. A hit that
// names none of them keeps extra+1 sentences.
func shortenHits(hits []search.Hit, names []string, extra int, rng *rand.Rand) []search.Hit {
	out := make([]search.Hit, len(hits))
	for i, h := range hits {
		title, text, _ := strings.Cut(h.Document.Contents, "\n")
		sentences := splitSentences(text)
		keep := make([]bool, len(sentences))
		var others []int
		for j, s := range sentences {
			if slices.ContainsFunc(names, func(n string) bool { return strings.Contains(s, n) }) {
				keep[j] = true
			} else {
				others = append(others, j)
			}
		}
		rng.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
		n := rng.IntN(extra + 1)
		if !slices.Contains(keep, true) {
			n = extra + 1
		}
		for _, j := range others[:min(n, len(others))] {
			keep[j] = true
		}
		var b strings.Builder
		for j, s := range sentences {
			if keep[j] {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(s)
			}
		}
		out[i] = h
		out[i].Document.Contents = title + "\n" + b.String()
	}
	return out
}

// splitSentences cuts a passage after each ". " that ends a sentence, not
// an initial ("Mewo C. Dolo").
func splitSentences(text string) []string {
	var out []string
	start := 0
	for i := 0; i+1 < len(text); i++ {
		if text[i] != '.' || text[i+1] != ' ' {
			continue
		}
		initial := i >= 2 && text[i-2] == ' ' && text[i-1] >= 'A' && text[i-1] <= 'Z'
		if initial {
			continue
		}
		out = append(out, text[start:i+1])
		start = i + 2
	}
	if rest := strings.TrimSpace(text[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// documents lists the hits' documents once each, in order.
func documents(hits []search.Hit) []search.Document {
	seen := map[string]bool{}
	var docs []search.Document
	for _, h := range hits {
		if !seen[h.Document.ID] {
			seen[h.Document.ID] = true
			docs = append(docs, h.Document)
		}
	}
	return docs
}

// packRows lays episodes end to end into rows of at most packLen tokens,
// each episode whole, in the first row with room left for it (first fit, in
// the given order; one longer than packLen gets a row of its own). Packing
// instead of padding spends every trained token on real text, and first
// fit leaves rows nearly full, which matters as a batch is padded to its
// longest row. An episode may attend to the ones before it in its row,
// which it learns to ignore as each one starts with its own prompt.
func packRows(episodes []episode, packLen int) (rows [][]int32, masks [][]float32) {
	// open lists the rows that may still take an episode; a row with less
	// room than the shortest episode is dropped from it, so the search
	// stays short.
	shortest := packLen
	for _, e := range episodes {
		shortest = min(shortest, len(e.Tokens))
	}
	var open []int
	for _, e := range episodes {
		n := len(e.Tokens)
		at := -1
		for k, r := range open {
			if len(rows[r])+n <= packLen {
				at = k
				break
			}
		}
		if at < 0 {
			rows, masks = append(rows, nil), append(masks, nil)
			if n < packLen {
				open = append(open, len(rows)-1)
				at = len(open) - 1
			} else {
				r := len(rows) - 1
				rows[r], masks[r] = e.Tokens, e.Mask
				continue
			}
		}
		r := open[at]
		rows[r] = append(rows[r], e.Tokens...)
		masks[r] = append(masks[r], e.Mask...)
		if packLen-len(rows[r]) < shortest {
			open = append(open[:at], open[at+1:]...)
		}
	}
	return rows, masks
}
