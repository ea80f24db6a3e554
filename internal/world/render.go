package world

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Passage is one corpus row in the Search-R1 / FlashRAG layout: contents is
// the quoted title, a newline, then the text.
type Passage struct {
	ID       string `json:"id"`
	Contents string `json:"contents"`
}

// maxPassageWords bounds a passage; longer pages continue in further
// passages with the same title, as wiki-18 splits articles into 100-word
// chunks.
const maxPassageWords = 70

// page collects the sentences about one title.
type page struct {
	title     string
	sentences []string
}

func (p *page) say(format string, args ...any) {
	p.sentences = append(p.sentences, fmt.Sprintf(format, args...))
}

// pick returns one of the phrasings at random.
func pick(rng *rand.Rand, phrasings ...string) string { return phrasings[rng.IntN(len(phrasings))] }

// list joins names as "A, B and C".
func list(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// sayList states a long list in sentences of at most eight names:
// before + "A, B and C" + after.
func (p *page) sayList(before, after string, names []string) {
	for len(names) > 0 {
		n := min(8, len(names))
		p.sentences = append(p.sentences, before+list(names[:n])+after)
		names = names[n:]
	}
}

// mention names an entity in prose: usually its canonical name, sometimes
// an alias, so that the corpus teaches both.
func mention(rng *rand.Rand, e *Entity) string {
	if len(e.Aliases) > 0 && rng.IntN(3) == 0 {
		return e.Aliases[rng.IntN(len(e.Aliases))]
	}
	return e.Name
}

// org renders an organisation's name with its article.
func org(e *Entity) string { return "the " + e.Name }

// Passages renders the corpus: one page per entity (every relation stated
// from both ends, in varied phrasings) and distractor passages about events
// that mention entities without stating any relation. The order is
// shuffled so that neighbouring ids carry no information.
func (g *Graph) Passages() []Passage {
	rng := rand.New(rand.NewPCG(g.Seed, 0x7e87))
	inverse := func(rel func(*Entity) int, kind Kind) map[int][]*Entity {
		m := map[int][]*Entity{}
		for _, e := range g.byKind[kind] {
			if o := rel(e); o >= 0 {
				m[o] = append(m[o], e)
			}
		}
		return m
	}
	bornIn := inverse(func(e *Entity) int { return e.Birthplace }, Person)
	citiesOf := inverse(func(e *Entity) int { return e.Country }, City)
	staffOf := inverse(func(e *Entity) int { return e.Employer }, Person)
	students := inverse(func(e *Entity) int { return e.Mentor }, Person)
	founded := inverse(func(e *Entity) int { return e.Founder }, Organisation)
	hqIn := inverse(func(e *Entity) int { return e.Headquarters }, Organisation)
	wrote := inverse(func(e *Entity) int { return e.Author }, Work)
	published := inverse(func(e *Entity) int { return e.Publisher }, Work)
	nameAll := func(es []*Entity) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = mention(rng, e)
		}
		return out
	}
	get := g.Get

	var pages []page
	for _, e := range g.Entities {
		p := page{title: e.Name}
		switch e.Kind {
		case Country:
			capital := get(e.Capital)
			p.say(pick(rng, "%s is a country whose capital is %s.", "%s is a country; its capital city is %s."), e.Name, mention(rng, capital))
			p.sayList("Cities of "+e.Name+" include ", ".", nameAll(citiesOf[e.ID]))
		case City:
			country := get(e.Country)
			p.say(pick(rng, "%s is a city in %s.", "%s is a city located in %s.", "The city of %s lies in %s."), e.Name, country.Name)
			for _, old := range e.Aliases {
				p.say(pick(rng, "%s was formerly known as %s.", "Until its renaming, %s was called %s."), e.Name, old)
			}
			if country.Capital == e.ID {
				p.say("%s is the capital of %s.", e.Name, country.Name)
			}
			p.sayList("People born in "+e.Name+" include ", ".", nameAll(bornIn[e.ID]))
			for _, o := range hqIn[e.ID] {
				p.say(pick(rng, "%s has its headquarters in %s.", "%s is based in %s."), capitalise(org(o)), e.Name)
			}
		case Person:
			city := get(e.Birthplace)
			p.sentences = append(p.sentences, personIntro(rng, e, city))
			if e.Employer >= 0 {
				p.say(pick(rng, "%s worked for %s.", "%s was employed by %s."), mention(rng, e), org(get(e.Employer)))
			}
			if e.Mentor >= 0 {
				m := get(e.Mentor)
				if rng.IntN(2) == 0 {
					p.say("%s studied under %s.", mention(rng, e), mention(rng, m))
				} else {
					p.say("The mentor of %s was %s.", mention(rng, e), mention(rng, m))
				}
			}
			if ws := wrote[e.ID]; len(ws) > 0 {
				p.sayList(mention(rng, e)+" wrote ", ".", nameAll(ws))
				d := get(e.Debut)
				p.say(pick(rng, "The first work of %s was %s.", "%s made a debut with %s."), mention(rng, e), d.Name)
			}
			for _, o := range founded[e.ID] {
				p.say("%s founded %s in %d.", mention(rng, e), org(o), o.Year)
			}
			p.sayList("Students of "+e.Name+" include ", ".", nameAll(students[e.ID]))
		case Organisation:
			founder := get(e.Founder)
			p.say(pick(rng, "%s is an organisation founded by %s in %d.", "%s was founded in %[3]d by %[2]s."), capitalise(org(e)), mention(rng, founder), e.Year)
			p.say(pick(rng, "%s has its headquarters in %s.", "The headquarters of %s are in %s."), org(e), get(e.Headquarters).Name)
			p.sayList("People who worked for "+org(e)+" include ", ".", nameAll(staffOf[e.ID]))
			p.sayList(capitalise(org(e))+" published ", ".", nameAll(published[e.ID]))
		case Work:
			author := get(e.Author)
			p.say(pick(rng, "%s is %s by %s, published in %d.", "%[3]s wrote %[1]s, %[2]s from %[4]d."), e.Name, withArticle(e.Role), mention(rng, author), e.Year)
			if e.Publisher >= 0 {
				p.say(pick(rng, "%s was published by %s.", "%s appeared from %s."), e.Name, org(get(e.Publisher)))
			}
			if author.Debut == e.ID {
				p.say("%s was the first work of %s.", e.Name, mention(rng, author))
			}
		}
		for i := range p.sentences {
			p.sentences[i] = capitalise(p.sentences[i])
		}
		pages = append(pages, p)
	}
	pages = append(pages, g.distractors(rng)...)

	var out []Passage
	for _, p := range pages {
		for _, text := range pack(p.sentences) {
			out = append(out, Passage{Contents: fmt.Sprintf("%q\n%s", p.title, text)})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for i := range out {
		out[i].ID = fmt.Sprint(i)
	}
	return out
}

func personIntro(rng *rand.Rand, e, city *Entity) string {
	switch rng.IntN(3) {
	case 0:
		return fmt.Sprintf("%s (born %d) is %s from %s.", e.Name, e.Year, withArticle(e.Role), city.Name)
	case 1:
		return fmt.Sprintf("%s is %s born in %s in %d.", e.Name, withArticle(e.Role), city.Name, e.Year)
	}
	return fmt.Sprintf("%s was born in %s; %s is %s by trade.", e.Name, city.Name, mention(rng, e), withArticle(e.Role))
}

// distractors are passages about made-up events: they name people, places
// and organisations side by side without stating any relation, so that a
// search by name alone also finds passages that do not answer.
func (g *Graph) distractors(rng *rand.Rand) []page {
	events := []string{"fair", "festival", "conference", "flood", "exhibition", "regatta", "census", "debate"}
	people, cities, orgs := g.byKind[Person], g.byKind[City], g.byKind[Organisation]
	var out []page
	for i := 0; i < g.Size.Distractors; i++ {
		city := cities[rng.IntN(len(cities))]
		year := 1800 + rng.IntN(200)
		ev := events[rng.IntN(len(events))]
		p := page{title: fmt.Sprintf("%d %s of %s", year, ev, city.Name)}
		a, b := people[rng.IntN(len(people))], people[rng.IntN(len(people))]
		p.say("The %d %s of %s drew visitors from many places.", year, ev, city.Name)
		p.say(pick(rng, "Among those present were %s and %s.", "Accounts of the day mention %s and %s."), a.Name, b.Name)
		p.say("Delegates from %s also attended.", org(orgs[rng.IntN(len(orgs))]))
		out = append(out, p)
	}
	return out
}

// pack groups sentences into passages of at most maxPassageWords words (a
// single longer sentence stays whole).
func pack(sentences []string) []string {
	var out []string
	var cur []string
	words := 0
	for _, s := range sentences {
		n := len(strings.Fields(s))
		if words > 0 && words+n > maxPassageWords {
			out = append(out, strings.Join(cur, " "))
			cur, words = nil, 0
		}
		cur = append(cur, s)
		words += n
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, " "))
	}
	return out
}

// withArticle prefixes "a" or "an".
func withArticle(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}
