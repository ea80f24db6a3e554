// Package world generates a fictional knowledge graph and renders it into
// everything self-play needs to be tried end to end without outside data:
// a corpus of encyclopedia-style passages, self-play seeds (answers with hop
// counts, no questions), QA pairs for a supervised baseline, and a held-out
// benchmark of 1–4-hop compositional questions.
//
// Names are made up from syllables, so no knowledge from pre-training helps;
// every fact is stated in the corpus from both ends of its relation, in
// several phrasings, next to distractor passages and look-alike names. Every
// relation is functional (one object per subject), so a question built by
// following relations from a uniquely named entity has exactly one answer.
package world

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
)

// Kind is an entity type.
type Kind int

// Entity kinds.
const (
	Country Kind = iota
	City
	Person
	Organisation
	Work
)

func (k Kind) String() string {
	return [...]string{"country", "city", "person", "organisation", "work"}[k]
}

// Entity is one node of the graph. Its relations are stored on the subject
// (for example a person's birthplace); the inverse lists are derived when
// passages are rendered.
type Entity struct {
	ID      int
	Kind    Kind
	Name    string   // canonical name, unique in the world
	Aliases []string // other names, unique in the world too; never empty strings
	Year    int      // birth, founding or publication year; 0 for places
	HeldOut bool     // reserved for the benchmark: never an anchor or answer in training data

	// Functional relations, by entity ID; -1 when absent.
	Country      int // city → country
	Capital      int // country → city
	Birthplace   int // person → city
	Employer     int // person → organisation
	Mentor       int // person → person
	Headquarters int // organisation → city
	Founder      int // organisation → person
	Author       int // work → person
	Publisher    int // work → organisation
	Debut        int // person → their earliest work (authors only)

	// Occupation of a person and genre of a work ("novel", "poem"…), for prose.
	Role string
}

// Answers returns the canonical name followed by the aliases.
func (e *Entity) Answers() []string {
	return append([]string{e.Name}, e.Aliases...)
}

// Graph is a generated world.
type Graph struct {
	Seed     uint64
	Size     Size
	Entities []*Entity
	byKind   [5][]*Entity

	namesOnce sync.Once
	names     map[string]*Entity // lower-cased names and aliases (byName)
}

// Size sets how many entities a world has.
type Size struct {
	Name                                        string
	Countries, Cities, People, Orgs, Works      int
	Distractors                                 int // passages about events that state no relation
	BenchmarkPerHop, TrainQAPerHop, SeedsPerHop int
}

// Sizes are the named presets of `ssp world gen --size`.
var Sizes = map[string]Size{
	"tiny":   {Name: "tiny", Countries: 4, Cities: 16, People: 120, Orgs: 16, Works: 100, Distractors: 40, BenchmarkPerHop: 10, TrainQAPerHop: 40, SeedsPerHop: 40},
	"small":  {Name: "small", Countries: 10, Cities: 80, People: 900, Orgs: 100, Works: 800, Distractors: 300, BenchmarkPerHop: 50, TrainQAPerHop: 500, SeedsPerHop: 300},
	"medium": {Name: "medium", Countries: 40, Cities: 2000, People: 40000, Orgs: 4000, Works: 36000, Distractors: 15000, BenchmarkPerHop: 250, TrainQAPerHop: 5000, SeedsPerHop: 3000},
	"large":  {Name: "large", Countries: 120, Cities: 20000, People: 400000, Orgs: 40000, Works: 360000, Distractors: 150000, BenchmarkPerHop: 500, TrainQAPerHop: 20000, SeedsPerHop: 10000},
}

// SizeNames lists the presets from smallest to largest.
var SizeNames = []string{"tiny", "small", "medium", "large"}

// heldOutEvery reserves one entity in five (of every kind but countries)
// for the benchmark.
const heldOutEvery = 5

// Names are made of syllables from a fixed inventory of 64: one of 16
// consonants followed by one of 4 vowels ("ba", "ko", "zi"). A small
// inventory of frequent pieces is what lets a small model learn to copy a
// name it has never seen: every piece of a held-out name is a piece it has
// seen thousands of times, and the world tokenizer keeps each syllable one
// token (see NameSyllables). With one token per whole name, or hundreds of
// rare pieces, a model of this size does not learn copying in a CPU budget.
var (
	consonants = []string{"b", "d", "f", "g", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z"}
	vowels     = []string{"a", "e", "i", "o"}
	workNou    = []string{"Chronicle", "Song", "Atlas", "Letters", "Garden", "Mirror", "Voyage", "Lantern", "Orchard", "Ledger"}
	orgKind    = []string{"Company", "Institute", "Guild", "Press", "Society", "Foundation", "Works", "Academy"}
	roles      = []string{"writer", "engineer", "painter", "historian", "physician", "architect", "composer", "botanist"}
	genres     = []string{"novel", "poem", "play", "memoir", "treatise", "essay collection"}
)

// reservedWords are English words of the corpus and questions that have the
// shape of a made-up name; no name may be one of them.
var reservedWords = map[string]bool{"made": true, "were": true, "to": true, "be": true, "so": true, "no": true, "do": true, "go": true, "me": true, "we": true}

// Syllables returns the 64 name syllables, lower-case.
func Syllables() []string {
	var out []string
	for _, c := range consonants {
		for _, v := range vowels {
			out = append(out, c+v)
		}
	}
	return out
}

// NameSyllables splits a word made only of name syllables into them
// ("Bakoti" → "Ba", "ko", "ti"); ok is false for any other word. Tokenizer
// training uses it to keep every syllable of every name one token.
func NameSyllables(word string) (syllables []string, ok bool) {
	if len(word) < 2 || len(word)%2 != 0 {
		return nil, false
	}
	for i := 0; i < len(word); i += 2 {
		c, v := strings.ToLower(word[i:i+1]), word[i+1:i+2]
		if i > 0 && word[i:i+1] != c {
			return nil, false // only the first letter may be a capital
		}
		if !slices.Contains(consonants, c) || !slices.Contains(vowels, v) {
			return nil, false
		}
		syllables = append(syllables, word[i:i+2])
	}
	return syllables, true
}

// namer draws unique made-up names.
type namer struct {
	rng  *rand.Rand
	used map[string]bool
	// A one-word name (a city, a country) never appears as a word of a
	// longer name, nor the other way round: with a small syllable inventory
	// a city "Fabi" and a person "Fabi Tolo" would otherwise share a word,
	// and the city's name would leak through the person's.
	single, part map[string]bool
}

func (n *namer) syllable() string {
	return consonants[n.rng.IntN(len(consonants))] + vowels[n.rng.IntN(len(vowels))]
}

func (n *namer) word(minSyl, maxSyl int) string {
	for {
		var b strings.Builder
		for i, k := 0, minSyl+n.rng.IntN(maxSyl-minSyl+1); i < k; i++ {
			b.WriteString(n.syllable())
		}
		if !reservedWords[b.String()] {
			return capitalise(b.String())
		}
	}
}

// lookalike changes one vowel of w, so it is still made of name syllables.
func (n *namer) lookalike(w string) string {
	s := []byte(strings.ToLower(w))
	k := 2*n.rng.IntN(len(s)/2) + 1 // a vowel position
	s[k] = vowels[n.rng.IntN(len(vowels))][0]
	if reservedWords[string(s)] {
		return capitalise(w)
	}
	return capitalise(string(s))
}

func capitalise(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// claim reserves names (case-insensitively); it reports false when one is
// taken or would share a word with a one-word name.
func (n *namer) claim(names ...string) bool {
	for _, s := range names {
		key := normKey(s)
		words := strings.Fields(key)
		if n.used[key] || len(words) == 1 && n.part[key] {
			return false
		}
		for _, w := range words {
			if len(words) > 1 && n.single[w] {
				return false
			}
		}
	}
	for _, s := range names {
		key := normKey(s)
		n.used[key] = true
		if words := strings.Fields(key); len(words) == 1 {
			n.single[key] = true
		} else {
			for _, w := range words {
				n.part[w] = true
			}
		}
	}
	return true
}

// normKey folds the differences answer matching ignores (case, articles,
// punctuation, spacing), so two entities never share a matching alias.
func normKey(s string) string {
	var words []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		if w != "a" && w != "an" && w != "the" {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}

// unique calls draw until it yields names not taken yet.
func (n *namer) unique(draw func() []string) []string {
	for {
		if names := draw(); n.claim(names...) {
			return names
		}
	}
}

// Generate builds the world for seed and size deterministically.
func Generate(seed uint64, size Size) (*Graph, error) {
	if size.Countries < 2 || size.Cities < size.Countries || size.People < 10 || size.Orgs < 2 || size.Works < 2 {
		return nil, fmt.Errorf("world: size %q is too small (need at least 2 countries, a city per country, 10 people, 2 organisations, 2 works)", size.Name)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5e1f91a7))
	g := &Graph{Seed: seed, Size: size}
	nm := &namer{rng: rng, used: map[string]bool{}, single: map[string]bool{}, part: map[string]bool{}}

	add := func(kind Kind, names []string) *Entity {
		e := &Entity{ID: len(g.Entities), Kind: kind, Name: names[0], Aliases: names[1:],
			Country: -1, Capital: -1, Birthplace: -1, Employer: -1, Mentor: -1,
			Headquarters: -1, Founder: -1, Author: -1, Publisher: -1, Debut: -1}
		e.HeldOut = kind != Country && len(g.byKind[kind])%heldOutEvery == heldOutEvery-1
		g.Entities = append(g.Entities, e)
		g.byKind[kind] = append(g.byKind[kind], e)
		return e
	}

	for range size.Countries {
		add(Country, nm.unique(func() []string { return []string{nm.word(3, 3)} }))
	}
	countries := g.byKind[Country]
	for i := range size.Cities {
		names := nm.unique(func() []string {
			if rng.IntN(6) == 0 { // a former name, also an accepted answer
				return []string{nm.word(2, 3), nm.word(2, 3)}
			}
			return []string{nm.word(2, 3)}
		})
		c := add(City, names)
		c.Country = countries[i%len(countries)].ID // every country gets cities
		if i < len(countries) {
			countries[i].Capital = c.ID
		}
	}
	cities := g.byKind[City]

	// People, oldest first so that mentors (older people) come earlier.
	var surnames []string
	for i := range size.People {
		names := nm.unique(func() []string {
			first := nm.word(2, 2)
			var last string
			if len(surnames) > 0 && rng.IntN(8) == 0 {
				last = nm.lookalike(surnames[rng.IntN(len(surnames))]) // look-alike family names
			} else {
				last = nm.word(2, 3)
			}
			if rng.IntN(4) == 0 { // a middle initial; the short form is an alias
				mid := string(rune('A' + rng.IntN(26)))
				return []string{first + " " + mid + ". " + last, first + " " + last}
			}
			return []string{first + " " + last}
		})
		p := add(Person, names)
		surnames = append(surnames, names[0][strings.LastIndex(names[0], " ")+1:])
		p.Year = 1700 + i*200/size.People + rng.IntN(15)
		p.Role = roles[rng.IntN(len(roles))]
		p.Birthplace = cities[rng.IntN(len(cities))].ID
		if i > 5 && rng.IntN(10) < 7 {
			p.Mentor = g.byKind[Person][rng.IntN(i)].ID
		}
	}
	people := g.byKind[Person]

	for range size.Orgs {
		names := nm.unique(func() []string { return []string{nm.word(2, 3) + " " + orgKind[rng.IntN(len(orgKind))]} })
		o := add(Organisation, names)
		founder := people[rng.IntN(len(people))]
		o.Founder = founder.ID
		o.Year = founder.Year + 25 + rng.IntN(30)
		o.Headquarters = cities[rng.IntN(len(cities))].ID
	}
	orgs := g.byKind[Organisation]
	for _, p := range people {
		if rng.IntN(10) < 8 {
			p.Employer = orgs[rng.IntN(len(orgs))].ID
		}
	}

	for range size.Works {
		names := nm.unique(func() []string {
			w := nm.word(2, 3) + " " + workNou[rng.IntN(len(workNou))]
			return []string{"The " + w}
		})
		w := add(Work, names)
		author := people[rng.IntN(len(people))]
		w.Author = author.ID
		w.Year = author.Year + 20 + rng.IntN(45)
		w.Role = genres[rng.IntN(len(genres))]
		if rng.IntN(10) < 6 {
			w.Publisher = orgs[rng.IntN(len(orgs))].ID
		}
		if d := author.Debut; d < 0 || g.Entities[d].Year > w.Year {
			author.Debut = w.ID
		}
	}
	return g, nil
}

// Get returns the entity with the given ID.
func (g *Graph) Get(id int) *Entity { return g.Entities[id] }
