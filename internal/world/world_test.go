package world

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/score"
	"github.com/ssp-project/ssp/internal/selfplay"
)

func generate(t *testing.T, size string, seed uint64) (*Graph, []Passage, Data) {
	t.Helper()
	g, err := Generate(seed, Sizes[size])
	if err != nil {
		t.Fatal(err)
	}
	return g, g.Passages(), g.Derive()
}

func TestDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		g, err := Generate(7, Sizes["tiny"])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{Files.Corpus, Files.Seeds, Files.TrainQA, Files.Benchmark, Files.BenchmarkReworded, Files.Info} {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed (or is empty)", f)
		}
	}
	g8, _ := Generate(8, Sizes["tiny"])
	g7, _ := Generate(7, Sizes["tiny"])
	if g8.Entities[20].Name == g7.Entities[20].Name && g8.Entities[30].Name == g7.Entities[30].Name {
		t.Error("different seeds gave the same names")
	}
}

// wordsIn reports whether needle occurs in hay as a run of whole
// normalised words.
func wordsIn(hay, needle string) bool {
	h, n := " "+score.Normalize(hay)+" ", " "+score.Normalize(needle)+" "
	return strings.Contains(h, n)
}

func TestBenchmarkDisjointFromTraining(t *testing.T) {
	_, _, d := generate(t, "small", 1)
	if len(d.Benchmark) != 4*Sizes["small"].BenchmarkPerHop {
		t.Fatalf("%d benchmark questions, want %d per hop count", len(d.Benchmark), Sizes["small"].BenchmarkPerHop)
	}
	// Every training text, normalised, in one string with separators, so
	// that a whole-word search is one Contains.
	var b strings.Builder
	trainQuestions := map[string]bool{}
	add := func(s string) { b.WriteString(" " + score.Normalize(s) + " |") }
	for _, q := range d.TrainQA {
		add(q.Question)
		for _, a := range q.Answers {
			add(a)
		}
		trainQuestions[q.Question] = true
	}
	for _, s := range d.Seeds {
		for _, a := range s.Answer {
			add(a)
		}
	}
	training := b.String()
	for _, q := range d.Benchmark {
		if trainQuestions[q.Question] {
			t.Errorf("benchmark question %q is also in train_qa", q.Question)
		}
		held := append(q.anchor.Answers(), q.answer.Answers()...)
		if !q.anchor.HeldOut || !q.answer.HeldOut {
			t.Errorf("%s: anchor or answer is not held out", q.ID)
		}
		for _, name := range held {
			if strings.Contains(training, " "+score.Normalize(name)+" ") {
				t.Fatalf("benchmark entity %q (question %s) appears in training data", name, q.ID)
			}
		}
	}
}

// TestBenchmarkDerivableFromCorpus follows every benchmark chain through the
// corpus text: each fact must be stated in a passage about its subject and
// again in a passage about its object (both ends of the relation), and the
// gold answer must be the last object.
func TestBenchmarkDerivableFromCorpus(t *testing.T) {
	g, passages, d := generate(t, "small", 1)
	byTitle := map[string][]string{}
	for _, p := range passages {
		title, text, ok := strings.Cut(p.Contents, "\n")
		if !ok {
			t.Fatalf("passage %s has no title line", p.ID)
		}
		title = strings.Trim(title, `"`)
		byTitle[title] = append(byTitle[title], text)
	}
	aliases := map[string][]string{}
	for _, e := range g.Entities {
		aliases[e.Name] = e.Answers()
	}
	mentions := func(title, name string) bool {
		for _, text := range byTitle[title] {
			for _, a := range aliases[name] {
				if wordsIn(text, a) {
					return true
				}
			}
		}
		return false
	}
	for _, q := range append(d.Benchmark, d.TrainQA[:200]...) {
		if len(q.Chain) != q.Hops {
			t.Fatalf("%s: %d facts for %d hops", q.ID, len(q.Chain), q.Hops)
		}
		for i, f := range q.Chain {
			if i > 0 && f.Subject != q.Chain[i-1].Object {
				t.Fatalf("%s: chain broken at fact %d", q.ID, i)
			}
			if !mentions(f.Subject, f.Object) {
				t.Errorf("%s: no passage about %q names %q (%s)", q.ID, f.Subject, f.Object, f.Relation)
			}
			if !mentions(f.Object, f.Subject) {
				t.Errorf("%s: no passage about %q names %q (%s, inverse)", q.ID, f.Object, f.Subject, f.Relation)
			}
		}
		if last := q.Chain[len(q.Chain)-1].Object; last != q.Answers[0] {
			t.Errorf("%s: answer %q is not the chain's end %q", q.ID, q.Answers[0], last)
		}
		if !strings.Contains(q.Question, q.Chain[0].Subject) {
			t.Errorf("%s: question does not name its anchor %q", q.ID, q.Chain[0].Subject)
		}
	}
}

// TestAliasesUnique: under the answer normalisation used for scoring, no
// two entities share a name or alias, so a gold alias can only ever match
// its own entity.
func TestAliasesUnique(t *testing.T) {
	for _, size := range []string{"tiny", "small"} {
		g, _, d := generate(t, size, 3)
		owner := map[string]int{}
		for _, e := range g.Entities {
			for _, a := range e.Answers() {
				key := score.Normalize(a)
				if key == "" {
					t.Fatalf("%s: empty alias", e.Name)
				}
				if o, ok := owner[key]; ok && o != e.ID {
					t.Errorf("%s: %q (%s) and %q share the alias %q", size, e.Name, e.Kind, g.Entities[o].Name, a)
				}
				owner[key] = e.ID
			}
		}
		for _, q := range d.Benchmark {
			for _, a := range q.Answers {
				if owner[score.Normalize(a)] != q.answer.ID {
					t.Errorf("%s: alias %q of %q belongs elsewhere", q.ID, a, q.Answers[0])
				}
			}
			if strings.Contains(score.Normalize(q.Question), score.Normalize(q.Answers[0])) {
				t.Errorf("%s: the question contains its answer", q.ID)
			}
		}
	}
}

func TestHopCountsAndSizes(t *testing.T) {
	_, passages, d := generate(t, "small", 1)
	if n := len(passages); n < 2000 || n > 5000 {
		t.Errorf("small world has %d passages, want a few thousand", n)
	}
	for i, q := range d.Benchmark[:8] {
		if q.Hops != i%4+1 {
			t.Errorf("benchmark question %d has %d hops: hop counts are not interleaved", i, q.Hops)
		}
	}
	hops := map[int]int{}
	for _, s := range d.Seeds {
		if s.Hops < 1 || s.Hops > 4 || len(s.Answer) == 0 {
			t.Fatalf("bad seed %+v", s)
		}
		hops[s.Hops]++
	}
	for h := 1; h <= 4; h++ {
		if hops[h] == 0 {
			t.Errorf("no seeds with %d hops", h)
		}
	}
	for _, p := range passages {
		if n := len(strings.Fields(p.Contents)); n > maxPassageWords+40 {
			t.Errorf("passage %s has %d words", p.ID, n)
		}
	}
	if _, err := Generate(1, Size{Name: "broken", Countries: 1}); err == nil {
		t.Error("a world too small to generate was accepted")
	}
}

// TestFilesReadByConsumers: the written files load with the readers that
// index, self-play and evaluation use.
func TestFilesReadByConsumers(t *testing.T) {
	dir := t.TempDir()
	g, _ := Generate(1, Sizes["tiny"])
	info, err := g.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	seeds, err := selfplay.LoadSeeds(filepath.Join(dir, Files.Seeds))
	if err != nil || len(seeds) != info.Seeds {
		t.Fatalf("seeds: %d, %v (want %d)", len(seeds), err, info.Seeds)
	}
	for _, f := range []string{Files.Benchmark, Files.BenchmarkReworded, Files.TrainQA} {
		ex, err := dataset.ReadJSONL(context.Background(), filepath.Join(dir, f))
		if err != nil || len(ex) == 0 {
			t.Fatalf("%s: %d examples, %v", f, len(ex), err)
		}
		if ex[0].Hops < 1 || len(ex[0].GoldenAnswers) == 0 {
			t.Errorf("%s: first example lost its hops or answers: %+v", f, ex[0])
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestResolve follows every benchmark and training question's chain back
// to its answer, and grades questions whose target is wrong as wrong.
// Mutations checked: resolvePhrase returning the subject instead of the
// relation's object fails "resolves to", and counting hops without the
// outer question form fails the hop counts.
func TestResolve(t *testing.T) {
	g, _, d := generate(t, "small", 1)
	for _, q := range append(append([]Question{}, d.Benchmark...), d.TrainQA...) {
		answer, hops, ok := g.Resolve(q.Question)
		switch {
		case !ok:
			t.Fatalf("%q: not read as the world's wording", q.Question)
		case answer == nil || answer != q.answer:
			t.Fatalf("%q resolves to %v, want %s", q.Question, answer, q.answer.Name)
		case hops != q.Hops:
			t.Fatalf("%q: %d hops, want %d", q.Question, hops, q.Hops)
		}
	}

	// The same wordings around another anchor of the same kind ask for
	// something else: a proposer that wrote this for the original target
	// wrote a wrong question.
	q := d.Benchmark[1] // a 2-hop question
	anchor := q.Path()[0]
	var other *Entity
	for _, e := range g.byKind[anchor.Kind] {
		if e != anchor && !strings.Contains(q.Question, e.Name) {
			if a, _, ok := g.Resolve(strings.Replace(q.Question, anchor.Name, e.Name, 1)); ok && a != q.answer {
				other = e
				break
			}
		}
	}
	if other == nil {
		t.Fatalf("no anchor of kind %s gives %q another answer", anchor.Kind, q.Question)
	}

	// Lower case names and a leading "the" before a name are read too.
	person := g.byKind[Person][0]
	if a, hops, ok := g.Resolve("Where was " + strings.ToLower(person.Name) + " born?"); !ok || hops != 1 || a == nil || a.ID != person.Birthplace {
		t.Errorf("lower-case name: got %v, %d, %v", a, hops, ok)
	}
	// A relation of the wrong kind breaks the chain: ok, but no answer.
	city := g.byKind[City][0]
	if a, hops, ok := g.Resolve("Who wrote " + city.Name + "?"); !ok || a != nil || hops != 1 {
		t.Errorf("a city has no author: got %v, %d, %v; want nil, 1, true", a, hops, ok)
	}
	for _, s := range []string{"", "Who wrote?", "Who wrote Nobody Atall?", "What is the population of " + city.Name + "?"} {
		if a, _, ok := g.Resolve(s); ok || a != nil {
			t.Errorf("%q: read as the world's wording (%v)", s, a)
		}
	}

	// Grade: right for the question's own answers (any alias, any case),
	// wrong for another target, other outside the wordings.
	// (Mutation: comparing the target with another entity's names fails it.)
	for _, c := range []struct {
		question string
		target   []string
		grade    Grade
		hops     int
	}{
		{q.Question, q.Answers, Right, 2},
		{q.Question, []string{strings.ToUpper(q.Answers[len(q.Answers)-1])}, Right, 2},
		{q.Question, []string{anchor.Name}, Wrong, 2},
		{strings.Replace(q.Question, anchor.Name, other.Name, 1), q.Answers, Wrong, 2},
		{"Who wrote " + city.Name + "?", []string{city.Name}, Wrong, 1},
		{"Which garden is the quietest?", q.Answers, Other, 0},
	} {
		if grade, hops := g.Grade(c.question, c.target); grade != c.grade || hops != c.hops {
			t.Errorf("Grade(%q, %v) = %v, %d; want %v, %d", c.question, c.target, grade, hops, c.grade, c.hops)
		}
	}
}

// TestBenchmarkReworded: the reworded benchmark asks the benchmark's
// chains, in the same order with the same answers, in wordings that no
// training question, warm-up question or benchmark question uses (Resolve,
// which reads exactly those wordings, reads none of them), and every one
// differs from its original; train_qa and the benchmark keep the
// questions they had before it existed (the digest, taken from files
// written by the earlier generator). Mutations checked: rewording with the
// training wordings (asks, phrase) fails "read as a training wording";
// rewording from Derive's stream before train_qa is drawn fails the
// digest.
func TestBenchmarkReworded(t *testing.T) {
	g, _, d := generate(t, "small", 1)
	if len(d.BenchmarkReworded) != len(d.Benchmark) {
		t.Fatalf("%d reworded questions for %d benchmark questions", len(d.BenchmarkReworded), len(d.Benchmark))
	}
	forms := map[string]int{}
	for i, rw := range d.BenchmarkReworded {
		q := d.Benchmark[i]
		switch {
		case rw.Question == q.Question:
			t.Fatalf("%q not reworded", q.Question)
		case !slices.Equal(rw.Answers, q.Answers) || rw.Hops != q.Hops || !slices.Equal(rw.Chain, q.Chain):
			t.Fatalf("%q: answers, hops or chain differ from %q", rw.Question, q.Question)
		case !strings.Contains(rw.Question, q.Path()[0].Name):
			t.Fatalf("%q does not name the anchor %s", rw.Question, q.Path()[0].Name)
		}
		if _, _, ok := g.Resolve(rw.Question); ok {
			t.Errorf("%q is read as a training wording", rw.Question)
		}
		form, _, _ := strings.Cut(rw.Question, q.Path()[0].Name)
		forms[form]++
	}
	if len(forms) < 20 {
		t.Errorf("only %d question openings in the reworded benchmark", len(forms))
	}
	// The other files are what they were before the reworded benchmark
	// existed: its random stream is its own.
	sum := sha256.New()
	for _, q := range d.TrainQA {
		fmt.Fprintln(sum, q.Question)
	}
	for _, q := range d.Benchmark {
		fmt.Fprintln(sum, q.Question)
	}
	if got := fmt.Sprintf("%x", sum.Sum(nil))[:16]; got != trainAndBenchmarkDigest {
		t.Errorf("train_qa and benchmark questions changed: digest %s, want %s", got, trainAndBenchmarkDigest)
	}
}

// trainAndBenchmarkDigest fingerprints the small world's (seed 1)
// train_qa and benchmark questions, as generated before the reworded
// benchmark was added.
const trainAndBenchmarkDigest = "d5e518e02d72a4d2"
