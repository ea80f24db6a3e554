package builtin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// The built-in world is a small fictional atlas: people born in cities,
// cities in countries, books written by people. Names are made up from
// syllables, so no outside knowledge helps; every fact is stated in the
// corpus from both ends of its relation. It yields self-play seeds (answers
// with hop counts, no questions) and a held-out benchmark whose answers are
// never seeds.

type person struct{ name, city, book string }

type atlas struct {
	countries []string
	cities    []string          // city names
	countryOf map[string]string // city → country
	people    []person
}

var syllables = []string{"ka", "lo", "ri", "men", "ta", "vo", "sil", "dra", "no", "bel", "qua", "zen", "mir", "tos", "ela", "gur", "fen", "oda", "pri", "sca"}

// makeName draws an unused name of parts syllables. The atlas asks for far
// fewer names of each length than there are combinations (20² and 20³).
func makeName(rng *rand.Rand, parts int, used map[string]bool) string {
	for {
		var b strings.Builder
		for i := 0; i < parts; i++ {
			b.WriteString(syllables[rng.IntN(len(syllables))])
		}
		s := b.String()
		s = strings.ToUpper(s[:1]) + s[1:]
		if !used[s] {
			used[s] = true
			return s
		}
	}
}

// newAtlas builds the world deterministically from seed.
func newAtlas(seed uint64) *atlas {
	rng := rand.New(rand.NewPCG(seed, 0xa71a5))
	used := map[string]bool{}
	a := &atlas{countryOf: map[string]string{}}
	for i := 0; i < 8; i++ {
		a.countries = append(a.countries, makeName(rng, 2, used)+"ia")
	}
	for i := 0; i < 40; i++ {
		c := makeName(rng, 3, used)
		a.cities = append(a.cities, c)
		a.countryOf[c] = a.countries[i%len(a.countries)]
	}
	for i := 0; i < 160; i++ {
		p := person{
			name: makeName(rng, 2, used) + " " + makeName(rng, 3, used),
			city: a.cities[rng.IntN(len(a.cities))],
			book: "The " + makeName(rng, 3, used) + " " + []string{"Chronicle", "Song", "Atlas", "Letters", "Garden"}[rng.IntN(5)],
		}
		a.people = append(a.people, p)
	}
	return a
}

type doc struct {
	ID       string `json:"id"`
	Contents string `json:"contents"`
}

type seedRow struct {
	Answer []string `json:"answer"`
	Hops   int      `json:"hops"`
}

type benchRow struct {
	ID            string   `json:"id"`
	Question      string   `json:"question"`
	GoldenAnswers []string `json:"golden_answers"`
	DataSource    string   `json:"data_source"`
	Hops          int      `json:"hops"`
}

// heldOut reports whether a person's facts belong to the benchmark: every
// fourth person. Their names, books and birth cities are never seed answers.
func heldOut(i int) bool { return i%4 == 3 }

func (a *atlas) documents() []doc {
	var docs []doc
	add := func(title, text string) {
		docs = append(docs, doc{ID: fmt.Sprint(len(docs)), Contents: fmt.Sprintf("%q\n%s", title, text)})
	}
	bornIn := map[string][]string{}
	for _, p := range a.people {
		bornIn[p.city] = append(bornIn[p.city], p.name)
	}
	for _, c := range a.countries {
		var cs []string
		for _, city := range a.cities {
			if a.countryOf[city] == c {
				cs = append(cs, city)
			}
		}
		add(c, fmt.Sprintf("%s is a country. Its cities include %s.", c, strings.Join(cs, ", ")))
	}
	for _, city := range a.cities {
		text := fmt.Sprintf("%s is a city in %s.", city, a.countryOf[city])
		if len(bornIn[city]) > 0 {
			text += fmt.Sprintf(" People born in %s include %s.", city, strings.Join(bornIn[city], ", "))
		}
		add(city, text)
	}
	for _, p := range a.people {
		add(p.name, fmt.Sprintf("%s is a writer born in %s. %s wrote %s.", p.name, p.city, p.name, p.book))
		add(p.book, fmt.Sprintf("%s is a book written by %s, who was born in the city of %s.", p.book, p.name, p.city))
	}
	return docs
}

// seedsAndBenchmark derives self-play seeds from the training people and
// benchmark questions (1 and 2 hops) from the held-out people.
func (a *atlas) seedsAndBenchmark() ([]seedRow, []benchRow) {
	var seeds []seedRow
	var bench []benchRow
	seen := map[string]bool{}
	seed := func(ans string, hops int) {
		key := fmt.Sprint(ans, hops)
		if !seen[key] {
			seen[key] = true
			seeds = append(seeds, seedRow{Answer: []string{ans}, Hops: hops})
		}
	}
	for i, p := range a.people {
		if heldOut(i) {
			bench = append(bench,
				benchRow{ID: fmt.Sprintf("bench-%d-1", i), Question: fmt.Sprintf("Who wrote %s?", p.book), GoldenAnswers: []string{p.name}, DataSource: "builtin-world", Hops: 1},
				benchRow{ID: fmt.Sprintf("bench-%d-2", i), Question: fmt.Sprintf("In which city was the author of %s born?", p.book), GoldenAnswers: []string{p.city}, DataSource: "builtin-world", Hops: 2},
			)
			continue
		}
		seed(p.name, 1)
		seed(p.book, 1)
		seed(p.city, 2)
		seed(a.countryOf[p.city], 2)
	}
	return seeds, bench
}

// writeWorld writes corpus.jsonl, seeds.jsonl and benchmark.jsonl into dir.
func writeWorld(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	a := newAtlas(1)
	seeds, bench := a.seedsAndBenchmark()
	if err := writeJSONL(filepath.Join(dir, "corpus.jsonl"), a.documents()); err != nil {
		return err
	}
	if err := writeJSONL(filepath.Join(dir, "seeds.jsonl"), seeds); err != nil {
		return err
	}
	return writeJSONL(filepath.Join(dir, "benchmark.jsonl"), bench)
}

func writeJSONL[T any](path string, rows []T) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
