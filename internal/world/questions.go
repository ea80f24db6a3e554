package world

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ssp-project/ssp/internal/score"
)

// A relation maps a subject to at most one object. Questions are chains of
// relations from an anchor entity, rendered as nested noun phrases: the
// 3-hop chain author → birthplace → country from a work reads "In which
// country is the birthplace of the author of The Velmira Song?".
type relation struct {
	name    string
	from    Kind
	to      Kind
	object  func(e *Entity) int
	phrase  string   // noun phrase for the object, %s = subject
	asks    []string // questions whose answer is the object, %s = subject; one is picked at random
	inverse string   // the relation whose step would come straight back (never chained after this one)
	// Wordings kept out of everything a model trains on (training QA,
	// seeds, warm-up episodes, the benchmark): the reworded benchmark asks
	// the benchmark's chains in them, to tell reading from template
	// matching.
	heldOutPhrase string
	heldOutAsks   []string
}

var relations = []relation{
	{name: "author", from: Work, to: Person, object: func(e *Entity) int { return e.Author },
		phrase: "the author of %s", asks: []string{"Who wrote %s?", "Who is the author of %s?", "Which writer produced %s?"}, inverse: "debut",
		heldOutPhrase: "the person who wrote %s", heldOutAsks: []string{"Who was the writer of %s?", "Whose work is %s?"}},
	{name: "publisher", from: Work, to: Organisation, object: func(e *Entity) int { return e.Publisher },
		phrase: "the publisher of %s", asks: []string{"Which organisation published %s?", "Who published %s?", "What is the publisher of %s?"},
		heldOutPhrase: "the organisation that published %s", heldOutAsks: []string{"Which organisation brought out %s?", "Who was %s published by?"}},
	{name: "birthplace", from: Person, to: City, object: func(e *Entity) int { return e.Birthplace },
		phrase: "the birthplace of %s", asks: []string{"In which city was %s born?", "Where was %s born?", "What is the birthplace of %s?"},
		heldOutPhrase: "the city where %s was born", heldOutAsks: []string{"What city was %s born in?", "Which city is the hometown of %s?"}},
	{name: "employer", from: Person, to: Organisation, object: func(e *Entity) int { return e.Employer },
		phrase: "the employer of %s", asks: []string{"Which organisation did %s work for?", "Who employed %s?", "Where did %s work?"},
		heldOutPhrase: "the organisation %s worked for", heldOutAsks: []string{"For which organisation did %s work?", "Which organisation employed %s?"}},
	{name: "mentor", from: Person, to: Person, object: func(e *Entity) int { return e.Mentor },
		phrase: "the mentor of %s", asks: []string{"Who was the mentor of %s?", "Under whom did %s study?", "Who taught %s?"},
		heldOutPhrase: "the teacher of %s", heldOutAsks: []string{"Who did %s study under?", "Who was the teacher of %s?"}},
	{name: "debut", from: Person, to: Work, object: func(e *Entity) int { return e.Debut },
		phrase: "the first work of %s", asks: []string{"What was the first work of %s?", "What was the debut of %s?", "Which work did %s publish first?"}, inverse: "author",
		heldOutPhrase: "the debut work of %s", heldOutAsks: []string{"What did %s publish first?", "Which was the debut work of %s?"}},
	{name: "headquarters", from: Organisation, to: City, object: func(e *Entity) int { return e.Headquarters },
		phrase: "the headquarters city of %s", asks: []string{"In which city is %s headquartered?", "Where is %s based?", "Where are the headquarters of %s?"},
		heldOutPhrase: "the city where %s is based", heldOutAsks: []string{"In what city does %s have its headquarters?", "Which city is %s based in?"}},
	{name: "founder", from: Organisation, to: Person, object: func(e *Entity) int { return e.Founder },
		phrase: "the founder of %s", asks: []string{"Who founded %s?", "Who was the founder of %s?", "Who started %s?"},
		heldOutPhrase: "the person who founded %s", heldOutAsks: []string{"Who set up %s?", "Who established %s?"}},
	{name: "country", from: City, to: Country, object: func(e *Entity) int { return e.Country },
		phrase: "the country of %s", asks: []string{"In which country is %s?", "Which country is %s in?", "In what country does %s lie?"}, inverse: "capital",
		heldOutPhrase: "the country where %s lies", heldOutAsks: []string{"What country is %s located in?", "Which country contains %s?"}},
	{name: "capital", from: Country, to: City, object: func(e *Entity) int { return e.Capital },
		phrase: "the capital of %s", asks: []string{"What is the capital of %s?", "Which city is the capital of %s?", "Name the capital of %s."}, inverse: "country",
		heldOutPhrase: "the capital city of %s", heldOutAsks: []string{"Which city serves as the capital of %s?", "What is the capital city of %s?"}},
}

// inverseOf maps a relation to the one that would step straight back.
var inverseOf = func() map[string]string {
	m := map[string]string{}
	for _, r := range relations {
		m[r.name] = r.inverse
	}
	return m
}()

// Fact is one edge of a question's chain: Relation(Subject) = Object.
type Fact struct {
	Subject  string `json:"subject"`
	Relation string `json:"relation"`
	Object   string `json:"object"`
}

// Question is a composed question with its unique answer.
type Question struct {
	ID       string   `json:"id"`
	Question string   `json:"question"`
	Answers  []string `json:"golden_answers"`
	Source   string   `json:"data_source"`
	Hops     int      `json:"hops"`
	Chain    []Fact   `json:"chain"` // the facts to look up, in order

	anchor, answer *Entity
	path           []*Entity
}

// walk follows hops random relations from anchor, never visiting an entity
// twice nor stepping straight back along the inverse relation. It returns
// nil when it gets stuck.
func (g *Graph) walk(rng *rand.Rand, anchor *Entity, hops int, allowed func(*Entity) bool) ([]relation, []*Entity) {
	path := []*Entity{anchor}
	var rels []relation
	seen := map[int]bool{anchor.ID: true}
	prev := ""
	for len(rels) < hops {
		cur := path[len(path)-1]
		var options []relation
		for _, r := range relations {
			if r.from != cur.Kind || prev != "" && r.name == inverseOf[prev] {
				continue
			}
			obj := r.object(cur)
			if obj < 0 || seen[obj] || !allowed(g.Entities[obj]) {
				continue
			}
			options = append(options, r)
		}
		if len(options) == 0 {
			return nil, nil
		}
		r := options[rng.IntN(len(options))]
		next := g.Entities[r.object(cur)]
		seen[next.ID] = true
		rels = append(rels, r)
		path = append(path, next)
		prev = r.name
	}
	return rels, path
}

// compose renders a chain as a question, in one of its last relation's
// wordings: several wordings per relation keep a model from learning one
// template instead of reading the question.
func compose(rng *rand.Rand, rels []relation, path []*Entity) string {
	np := path[0].Name
	for _, r := range rels[:len(rels)-1] {
		np = fmt.Sprintf(r.phrase, np)
	}
	last := rels[len(rels)-1]
	return fmt.Sprintf(last.asks[rng.IntN(len(last.asks))], np)
}

func newQuestion(rng *rand.Rand, id, source string, rels []relation, path []*Entity) Question {
	q := Question{ID: id, Question: compose(rng, rels, path), Source: source, Hops: len(rels),
		anchor: path[0], answer: path[len(path)-1], path: path}
	q.Answers = q.answer.Answers()
	for i, r := range rels {
		q.Chain = append(q.Chain, Fact{Subject: path[i].Name, Relation: r.name, Object: path[i+1].Name})
	}
	return q
}

// questions draws up to perHop distinct questions of each hop count 1..4,
// from anchors and answers accepted by ends, through entities accepted by
// inner.
func (g *Graph) questions(rng *rand.Rand, prefix, source string, perHop int, ends, inner func(*Entity) bool) []Question {
	var anchors []*Entity
	for _, e := range g.Entities {
		if ends(e) && e.Kind != Country {
			anchors = append(anchors, e)
		}
	}
	var out []Question
	seen := map[string]bool{}
	for hops := 1; hops <= 4; hops++ {
		n := 0
		for try := 0; n < perHop && try < perHop*50; try++ {
			anchor := anchors[rng.IntN(len(anchors))]
			rels, path := g.walk(rng, anchor, hops, inner)
			if rels == nil || !ends(path[len(path)-1]) {
				continue
			}
			if hops > 1 && path[len(path)-1].Kind == Country {
				continue // few countries: they would dominate multi-hop answers
			}
			q := newQuestion(rng, fmt.Sprintf("%s-%d-%d", prefix, hops, n), source, rels, path)
			if seen[q.Question] {
				continue
			}
			seen[q.Question] = true
			out = append(out, q)
			n++
		}
	}
	return out
}

// Seed is a self-play target: an answer and the number of searches the
// question built for it should need.
type Seed struct {
	Answer []string `json:"answer"`
	Hops   int      `json:"hops"`
}

// Data is what a world yields besides its corpus.
type Data struct {
	Seeds     []Seed
	TrainQA   []Question
	Benchmark []Question
	// BenchmarkReworded asks every benchmark chain again in wordings that
	// nothing a model trains on uses (relation.heldOutAsks and
	// heldOutPhrase), same order, answers and chains.
	BenchmarkReworded []Question
}

// interleaveHops orders questions 1, 2, 3, 4, 1, 2, … hops, so that any
// prefix of the benchmark (eval --limit, run.eval_limit) is balanced.
func interleaveHops(qs []Question) []Question {
	byHops := map[int][]Question{}
	for _, q := range qs {
		byHops[q.Hops] = append(byHops[q.Hops], q)
	}
	out := make([]Question, 0, len(qs))
	for i := 0; len(out) < len(qs); i++ {
		for h := 1; h <= 4; h++ {
			if i < len(byHops[h]) {
				out = append(out, byHops[h][i])
			}
		}
	}
	return out
}

func training(e *Entity) bool  { return !e.HeldOut }
func benchmark(e *Entity) bool { return e.HeldOut }
func anyEntity(*Entity) bool   { return true }

// Derive draws seeds, training QA and the benchmark. Training data (seeds
// and train_qa) only ever touches entities that are not held out, along its
// whole chain; every benchmark question starts from and ends at held-out
// entities, so no benchmark anchor or answer appears in training data.
func (g *Graph) Derive() Data {
	rng := rand.New(rand.NewPCG(g.Seed, 0xda7a))
	var d Data
	d.Benchmark = interleaveHops(g.questions(rng, "bench", "world-benchmark", g.Size.BenchmarkPerHop, benchmark, anyEntity))
	d.TrainQA = g.questions(rng, "train", "world-train", g.Size.TrainQAPerHop, training, training)
	// Seeds: the answers of training chains (their questions are thrown
	// away), each with the hop count of a chain that reaches it.
	seen := map[string]bool{}
	for _, q := range g.questions(rng, "seed", "world-seed", g.Size.SeedsPerHop, training, training) {
		key := fmt.Sprint(q.answer.ID, "/", q.Hops)
		if seen[key] {
			continue
		}
		seen[key] = true
		d.Seeds = append(d.Seeds, Seed{Answer: q.answer.Answers(), Hops: q.Hops})
	}
	// Its own random stream: the files above stay what they were.
	rw := rand.New(rand.NewPCG(g.Seed, 0x7e3d))
	for _, q := range d.Benchmark {
		d.BenchmarkReworded = append(d.BenchmarkReworded, reworded(rw, q))
	}
	return d
}

// reworded asks q's chain in the held-out wordings: nested held-out noun
// phrases inside one of the last relation's held-out questions.
func reworded(rng *rand.Rand, q Question) Question {
	byName := map[string]relation{}
	for _, r := range relations {
		byName[r.name] = r
	}
	np := q.path[0].Name
	for _, f := range q.Chain[:len(q.Chain)-1] {
		np = fmt.Sprintf(byName[f.Relation].heldOutPhrase, np)
	}
	last := byName[q.Chain[len(q.Chain)-1].Relation]
	out := q
	out.ID = q.ID + "-reworded"
	out.Source = q.Source + "-reworded"
	out.Question = fmt.Sprintf(last.heldOutAsks[rng.IntN(len(last.heldOutAsks))], np)
	return out
}

// WarmUpQuestions draws n distinct questions of 1 to maxHops hops (in
// turn) whose every entity is not held out and passes keep (nil keeps all),
// from their own random stream (independent of Derive's), for teaching a
// model the search protocol before self-play.
func (g *Graph) WarmUpQuestions(seed uint64, n, maxHops int, keep func(*Entity) bool) []Question {
	rng := rand.New(rand.NewPCG(g.Seed, seed^0x3a9f))
	allowed := func(e *Entity) bool { return training(e) && (keep == nil || keep(e)) }
	var out []Question
	seen := map[string]bool{}
	var anchors []*Entity
	for _, e := range g.Entities {
		if allowed(e) && e.Kind != Country {
			anchors = append(anchors, e)
		}
	}
	if len(anchors) == 0 || maxHops < 1 {
		return nil
	}
	for try := 0; len(out) < n && try < n*50; try++ {
		hops := 1 + len(out)%maxHops
		rels, path := g.walk(rng, anchors[rng.IntN(len(anchors))], hops, allowed)
		if rels == nil {
			continue
		}
		q := newQuestion(rng, fmt.Sprintf("warmup-%d", len(out)), "world-warmup", rels, path)
		if seen[q.Question] {
			continue
		}
		seen[q.Question] = true
		out = append(out, q)
	}
	return out
}

// Path returns the entities a question's chain visits, anchor first and
// answer last.
func (q *Question) Path() []*Entity { return q.path }

// Resolve reads a question written in the world's wordings (any of a
// relation's question forms around nested noun phrases, as compose writes
// them) and follows its chain through the graph. It returns the entity the
// question asks for and the number of relations on the way; ok is false
// when the question is not in those wordings or names no entity of the
// world, and answer is nil (with ok true) when the chain breaks: a
// relation the entity does not have, or one of the wrong kind. This grades
// questions a policy writes about the world, such as a self-play
// proposer's, without asking a model.
func (g *Graph) Resolve(question string) (answer *Entity, hops int, ok bool) {
	q := strings.TrimSpace(question)
	for _, r := range relations {
		for _, ask := range r.asks {
			pre, suf, _ := strings.Cut(ask, "%s")
			if len(q) < len(pre)+len(suf) || !strings.HasPrefix(q, pre) || !strings.HasSuffix(q, suf) {
				continue
			}
			if subject, h, ok := g.resolvePhrase(q[len(pre) : len(q)-len(suf)]); ok {
				return g.follow(r, subject, h)
			}
		}
	}
	return nil, 0, false
}

// resolvePhrase resolves a noun phrase: an entity's name or alias (with or
// without a leading "the"), or a relation's phrase around another noun
// phrase.
func (g *Graph) resolvePhrase(np string) (*Entity, int, bool) {
	np = strings.TrimSpace(np)
	if e := g.byName(np); e != nil {
		return e, 0, true
	}
	if rest, ok := strings.CutPrefix(np, "the "); ok {
		if e := g.byName(rest); e != nil {
			return e, 0, true
		}
	}
	for _, r := range relations {
		pre, _, _ := strings.Cut(r.phrase, "%s")
		rest, ok := strings.CutPrefix(np, pre)
		if !ok {
			continue
		}
		if subject, h, ok := g.resolvePhrase(rest); ok {
			return g.follow(r, subject, h)
		}
	}
	return nil, 0, false
}

// follow takes relation r one step from subject, the end of a chain of h
// relations; a nil subject (a broken chain), one of another kind or one
// without the relation breaks the chain.
func (g *Graph) follow(r relation, subject *Entity, h int) (*Entity, int, bool) {
	if subject == nil || subject.Kind != r.from || r.object(subject) < 0 {
		return nil, h + 1, true
	}
	return g.Entities[r.object(subject)], h + 1, true
}

// byName finds an entity by its name or an alias, ignoring case.
func (g *Graph) byName(name string) *Entity {
	g.namesOnce.Do(func() {
		g.names = map[string]*Entity{}
		for _, e := range g.Entities {
			for _, n := range e.Answers() {
				g.names[strings.ToLower(n)] = e
			}
		}
	})
	return g.names[strings.ToLower(name)]
}

// Grade is how a question written for a target reads against the world's
// facts (see Graph.Grade).
type Grade int

// Grades.
const (
	Other Grade = iota // not in the world's wordings
	Right              // its chain ends at the target
	Wrong              // its chain ends elsewhere, or breaks
)

func (g Grade) String() string { return [...]string{"other", "right", "wrong"}[g] }

// Grade reads question with Resolve and says whether its chain ends at an
// entity with one of the target names (compared as answers are, with the
// scorer's normalisation); hops is the chain's length when it is read.
func (g *Graph) Grade(question string, target []string) (grade Grade, hops int) {
	end, hops, ok := g.Resolve(question)
	switch {
	case !ok:
		return Other, 0
	case end != nil && slices.ContainsFunc(end.Answers(), func(name string) bool { return score.ExactMatch(name, target) }):
		return Right, hops
	}
	return Wrong, hops
}
