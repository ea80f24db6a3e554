package selfplay

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/score"
)

// Each check on a proposed question is a small named function returning a
// Verdict; a proposal is valid only if every verdict passes. All verdicts
// are written to the rollout log, so a run shows why questions fail.

// Filter names, as they appear in verdicts and metrics.
const (
	FilterExtract          = "extract"           // a <question> was written
	FilterLength           = "length"            // character and word bounds
	FilterAnswerLeak       = "answer_leak"       // no alias of the answer in the question
	FilterRetrieved        = "retrieved"         // the proposer's searches found documents
	FilterSearchCount      = "search_count"      // enough distinct searches
	FilterAnswerInQueries  = "answer_in_queries" // the answer was not searched for directly
	FilterAnswerEvidence   = "answer_evidence"   // a retrieved page about something else names the answer
	FilterGroundedSearches = "grounded_searches" // every search after the first uses words the proposer was shown
	FilterDuplicate        = "duplicate"         // not a near-copy of an earlier question in the batch
	FilterRAG              = "rag"               // answerable from the proposer's documents
)

// Verdict is one check's outcome.
type Verdict struct {
	Filter string `json:"filter"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail,omitempty"`
}

func pass(filter string) Verdict { return Verdict{Filter: filter, Pass: true} }

func fail(filter, format string, args ...any) Verdict {
	return Verdict{Filter: filter, Detail: fmt.Sprintf(format, args...)}
}

// ExtractQuestion returns the body of the first <question> tag: the
// proposer is told to write exactly one, and anything after the first is
// not part of its answer.
func ExtractQuestion(response string) (string, Verdict) {
	q, ok := agent.FirstTagBody(response, "question")
	switch {
	case !ok:
		return "", fail(FilterExtract, "no <question>…</question>")
	case q == "":
		return "", fail(FilterExtract, "empty question")
	}
	return q, pass(FilterExtract)
}

// CheckLength bounds the question's characters and words.
func CheckLength(question string, cfg FilterConfig) Verdict {
	chars := len([]rune(question))
	words := len(strings.Fields(question))
	switch {
	case chars < cfg.MinQuestionChars:
		return fail(FilterLength, "%d characters < %d", chars, cfg.MinQuestionChars)
	case chars > cfg.MaxQuestionChars:
		return fail(FilterLength, "%d characters > %d", chars, cfg.MaxQuestionChars)
	case words < cfg.MinQuestionWords:
		return fail(FilterLength, "%d words < %d", words, cfg.MinQuestionWords)
	case words > cfg.MaxQuestionWords:
		return fail(FilterLength, "%d words > %d", words, cfg.MaxQuestionWords)
	}
	return pass(FilterLength)
}

// CheckAnswerLeak rejects a question that contains any alias of the answer
// as a whole-word phrase after normalisation.
func CheckAnswerLeak(question string, answers []string) Verdict {
	if a, ok := containsAlias(question, answers); ok {
		return fail(FilterAnswerLeak, "question contains the answer %q", a)
	}
	return pass(FilterAnswerLeak)
}

// CheckRetrieved requires at least one retrieved document: a question
// written without evidence cannot be verified.
func CheckRetrieved(traj *agent.Trajectory) Verdict {
	if len(traj.Documents()) == 0 {
		return fail(FilterRetrieved, "no documents retrieved (%d searches)", len(traj.Searches))
	}
	return pass(FilterRetrieved)
}

// CheckAnswerEvidence requires a retrieved document that names the answer
// and is not the answer's own page (its title one of the answer's names).
// A question asks about something and leads to the answer through a fact;
// that fact is stated on a page about something else (the subject of the
// chain's last link) as well as, perhaps, on the answer's page. A proposer
// that searched its target, then read an unrelated page and asked about
// it, has only the target's own page naming the target: its question
// cannot lead there, whatever a RAG check answers.
func CheckAnswerEvidence(traj *agent.Trajectory, answers []string) Verdict {
	for _, d := range traj.Documents() {
		if score.ExactMatch(d.Title(), answers) {
			continue
		}
		if _, ok := containsAlias(d.Contents, answers); ok {
			return pass(FilterAnswerEvidence)
		}
	}
	return fail(FilterAnswerEvidence, "no retrieved page but the answer's own names the answer")
}

// CheckSearchCount requires minSearches distinct (normalised) queries, and
// at least hops when requireHops is set.
func CheckSearchCount(queries []string, minSearches, hops int, requireHops bool) Verdict {
	n := distinctQueries(queries)
	need := minSearches
	if requireHops && hops > need {
		need = hops
	}
	if n < need {
		return fail(FilterSearchCount, "%d distinct searches < %d", n, need)
	}
	return pass(FilterSearchCount)
}

// CheckGroundedSearches requires every search after the first to use only
// words the proposer had been shown: its target's names and the results of
// its earlier searches (normalised, articles ignored). A proposer walks a
// chain back from its target by searching a name it just read; a search
// for a name it never read (a miscopied one: "Piva Taze" after reading
// "Pifo Boze") lands on an unrelated page, and the question it then writes
// about that page does not lead to the target. Graded on the built-in
// world, such questions were rarely right while the RAG check passed them
// as often as right ones (docs/world.md). The first search is free:
// it is where the walk starts.
func CheckGroundedSearches(searches []agent.SearchCall, answers []string) Verdict {
	shown := map[string]bool{}
	see := func(text string) {
		for _, w := range strings.Fields(normalizeText(text)) {
			shown[w] = true
		}
	}
	for _, a := range answers {
		see(a)
	}
	for i, s := range searches {
		if i > 0 {
			for _, w := range strings.Fields(normalizeText(s.Query)) {
				if !shown[w] {
					return fail(FilterGroundedSearches, "search %d %q: %q is neither in the target nor in a result shown before it", i+1, s.Query, w)
				}
			}
		}
		for _, d := range s.Documents {
			see(d.Contents)
		}
	}
	return pass(FilterGroundedSearches)
}

// distinctQueries counts the different (normalised, non-empty) queries.
func distinctQueries(queries []string) int {
	distinct := map[string]bool{}
	for _, q := range queries {
		if n := normalizeText(q); n != "" {
			distinct[n] = true
		}
	}
	return len(distinct)
}

// CheckAnswerInQueries rejects proposals that searched for the answer
// itself, which tends to produce questions answerable in one lookup.
func CheckAnswerInQueries(queries []string, answers []string) Verdict {
	for _, q := range queries {
		if a, ok := containsAlias(q, answers); ok {
			return fail(FilterAnswerInQueries, "query %q contains the answer %q", q, a)
		}
	}
	return pass(FilterAnswerInQueries)
}

// NearDuplicates returns, for each question, the index of an earlier
// question whose word-set Jaccard similarity reaches threshold, or -1.
// Empty questions (failed extraction) are never duplicates.
func NearDuplicates(questions []string, threshold float64) []int {
	dup := make([]int, len(questions))
	sets := make([]map[string]bool, len(questions))
	for i, q := range questions {
		dup[i] = -1
		sets[i] = wordSet(q)
		if threshold <= 0 || len(sets[i]) == 0 {
			continue
		}
		for j := 0; j < i; j++ {
			if dup[j] == -1 && len(sets[j]) > 0 && jaccard(sets[i], sets[j]) >= threshold {
				dup[i] = j
				break
			}
		}
	}
	return dup
}

func wordSet(text string) map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.Fields(normalizeText(text)) {
		set[w] = true
	}
	return set
}

func jaccard(a, b map[string]bool) float64 {
	inter := 0
	for w := range a {
		if b[w] {
			inter++
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 0
	}
	return float64(inter) / float64(union)
}

// containsAlias reports the first alias that occurs in text as a sequence
// of whole normalised words.
func containsAlias(text string, aliases []string) (string, bool) {
	padded := " " + normalizeText(text) + " "
	for _, a := range aliases {
		n := normalizeText(a)
		if n != "" && strings.Contains(padded, " "+n+" ") {
			return a, true
		}
	}
	return "", false
}

// normalizeText lower-cases, turns every non-letter, non-digit into a space,
// drops the articles a/an/the and collapses whitespace. Unlike
// score.Normalize (SQuAD's, which deletes punctuation) it splits words at
// punctuation, so "Mira-Tal" still reveals the answer "Mira Tal" and the
// word-level checks (leaks, Jaccard) see whole words.
func normalizeText(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			return unicode.ToLower(r)
		default:
			return ' '
		}
	}, s)
	words := strings.Fields(s)
	out := words[:0]
	for _, w := range words {
		if w != "a" && w != "an" && w != "the" {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}
