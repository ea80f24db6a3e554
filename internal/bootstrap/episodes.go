package bootstrap

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	Tokens []int32
	Mask   []float32
}

// transcript assembles an episode piece by piece, encoding each piece
// separately as the agent loop does (generated turns and inserted results
// are never tokenised together).
type transcript struct {
	tok *tokenizer.Tokenizer
	ep  episode
}

func (t *transcript) add(text string, trained bool) {
	ids := t.tok.Encode(text)
	var m float32
	if trained {
		m = 1
	}
	for range ids {
		t.ep.Mask = append(t.ep.Mask, m)
	}
	t.ep.Tokens = append(t.ep.Tokens, ids...)
}

// episodeMaker writes the three kinds of warm-up episode from single-hop
// facts of the world (never held-out entities).
type episodeMaker struct {
	tok      *tokenizer.Tokenizer
	searcher search.Searcher
	opts     Options
	rng      *rand.Rand
}

func (e *episodeMaker) prompt(role, system, user string) (*transcript, error) {
	text, err := e.tok.ApplyChatTemplate([]tokenizer.Message{{Role: "system", Content: system}, {Role: "user", Content: user}}, true)
	if err != nil {
		return nil, err
	}
	t := &transcript{tok: e.tok, ep: episode{Role: role}}
	t.add(text, false)
	return t, nil
}

// mentionsAny reports whether some hit's text names one of the names.
func mentionsAny(hits []search.Hit, names []string) bool {
	for _, h := range hits {
		for _, n := range names {
			if strings.Contains(h.Document.Contents, n) {
				return true
			}
		}
	}
	return false
}

// make builds episodes from questions: for each single-hop question
// (anchor S, answer A) a solver episode (search S, read, answer A), a
// proposer episode for target A (search A, find S, search S, write the
// question) and a RAG-verification episode (answer from the proposer's
// documents mixed with noise). Episodes whose searches do not surface the
// needed fact are dropped rather than teaching the model to guess.
func (e *episodeMaker) make(ctx context.Context, qs []world.Question) ([]episode, map[string]int, error) {
	var queries []string
	for _, q := range qs {
		queries = append(queries, q.Chain[0].Subject, q.Answers[0])
	}
	hits, err := e.searcher.Search(ctx, queries, e.opts.TopK)
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap: search: %w", err)
	}
	dropped := map[string]int{}
	var out []episode
	for i, q := range qs {
		anchorHits, answerHits := hits[2*i], hits[2*i+1]
		anchor := q.Chain[0].Subject
		// The query names the anchor; sometimes by an alias, as questions do.
		if !mentionsAny(anchorHits, q.Answers) {
			dropped["answer not in the anchor's search results"]++
			continue
		}

		// Solver: <search> anchor </search> <information>… <answer> A </answer>
		system, user := selfplay.SolverMessages(q.Question)
		t, err := e.prompt("solver", system, user)
		if err != nil {
			return nil, nil, err
		}
		t.add("<search> "+anchor+" </search>", true)
		t.add(agent.InformationText(anchorHits, e.opts.MaxInformationChars), false)
		t.add("<answer> "+q.Answers[0]+" </answer>", true)
		out = append(out, t.ep)

		// Proposer: target A; find a fact that names A, look up its subject,
		// write the question. The hop count asked for varies; the warm-up
		// question is always single-hop (self-play is what makes them harder).
		if mentionsAny(answerHits, q.AnchorAnswers()) {
			seed := selfplay.Seed{Answers: q.Answers}
			system, user = selfplay.ProposerMessages(seed, 1+e.rng.IntN(4))
			t, err = e.prompt("proposer", system, user)
			if err != nil {
				return nil, nil, err
			}
			t.add("<search> "+q.Answers[0]+" </search>", true)
			t.add(agent.InformationText(answerHits, e.opts.MaxInformationChars), false)
			t.add("<search> "+anchor+" </search>", true)
			t.add(agent.InformationText(anchorHits, e.opts.MaxInformationChars), false)
			t.add("<question> "+q.Question+" </question>", true)
			out = append(out, t.ep)
		} else {
			dropped["anchor not in the answer's search results"]++
		}

		// RAG verification: the documents the proposer saw, shuffled with
		// noise blocks from other questions' searches, no search allowed.
		docs := documents(search.VisibleHits(answerHits, e.opts.MaxInformationChars), search.VisibleHits(anchorHits, e.opts.MaxInformationChars))
		for b := 0; b < e.opts.NoiseBlocks; b++ {
			docs = append(docs, documents(search.VisibleHits(hits[e.rng.IntN(len(hits))], e.opts.MaxInformationChars))...)
		}
		e.rng.Shuffle(len(docs), func(a, b int) { docs[a], docs[b] = docs[b], docs[a] })
		system, user = selfplay.RAGMessages(q.Question, docs)
		t, err = e.prompt("rag", system, user)
		if err != nil {
			return nil, nil, err
		}
		if len(t.ep.Tokens) > e.opts.MaxPromptTokens {
			dropped["RAG prompt too long"]++
			continue
		}
		t.add("<answer> "+q.Answers[0]+" </answer>", true)
		out = append(out, t.ep)
	}
	return out, dropped, nil
}

func documents(groups ...[]search.Hit) []search.Document {
	seen := map[string]bool{}
	var docs []search.Document
	for _, hits := range groups {
		for _, h := range hits {
			if !seen[h.Document.ID] {
				seen[h.Document.ID] = true
				docs = append(docs, h.Document)
			}
		}
	}
	return docs
}
