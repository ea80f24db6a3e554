package bootstrap

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/corpus"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/score"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
	"github.com/ssp-project/ssp/internal/world"
)

func tinyWorld(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	g, err := world.Generate(5, world.Sizes["tiny"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestEpisodes checks the token layout of the scripted episodes: the loss
// mask covers exactly the model's own turns, the inserted search results
// are the agent loop's text, and the final tag holds the right answer.
func TestEpisodes(t *testing.T) {
	dir := tinyWorld(t)
	texts, err := readCorpus(context.Background(), filepath.Join(dir, world.Files.Corpus))
	if err != nil {
		t.Fatal(err)
	}
	tokDir := t.TempDir()
	o := DefaultOptions()
	o.ContextWeight = 0.25
	bpe, err := tokenizer.TrainBPE(context.Background(), trainingTexts(texts, mustPrompts(t, selfplay.PromptsMinimal)), tokenizer.TrainOptions{
		VocabSize: 600, AddedTokens: AddedTokens, SpecialCount: 3, EOSToken: "<|im_end|>", PadToken: "<|endoftext|>", ChatTemplate: ChatMLTemplate})
	if err != nil {
		t.Fatal(err)
	}
	if err := bpe.WriteDir(tokDir); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := corpus.Open(filepath.Join(dir, world.Files.Corpus), corpus.FormatJSONL)
	ixDir := filepath.Join(t.TempDir(), "ix")
	if _, err := index.Build(context.Background(), src.Docs(context.Background()), ixDir, index.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	ix, err := index.Open(ixDir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	g, err := loadWorld(dir)
	if err != nil {
		t.Fatal(err)
	}
	qs := g.WarmUpQuestions(1, 40, 2, nil)
	maker := &episodeMaker{tok: tok, searcher: ix, opts: o, prompts: mustPrompts(t, o.Prompts), rng: rand.New(rand.NewPCG(1, 2))}
	eps, dropped, err := maker.make(context.Background(), qs)
	if err != nil {
		t.Fatal(err)
	}
	checkDrills(t, maker, tok, qs, eps)

	// The copy phase draws its drills from worlds made for it: the names
	// the drills search for are (almost) never names of the user's world,
	// so they cannot be answered from memory. (Mutation: drawing them from
	// the user's own world fails this with every drill.)
	names := map[string]bool{}
	for _, e := range g.Entities {
		for _, n := range e.Answers() {
			names[n] = true
		}
	}
	co := o
	co.World, co.CopySteps, co.BatchSize, co.CopyPackLen = dir, 4, 2, 128
	fresh, _, err := copyDrills(context.Background(), co, g, tok, mustPrompts(t, co.Prompts), t.TempDir(), rand.New(rand.NewPCG(3, 4)), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	known := 0
	for _, d := range fresh {
		_, turns, _ := strings.Cut(tok.Decode(d.Tokens), "<|im_start|>assistant\n")
		_, after, _ := strings.Cut(turns, "<search> ")
		query, _, _ := strings.Cut(after, " </search>")
		if names[query] {
			known++
		}
	}
	if len(fresh) == 0 || known*20 > len(fresh) {
		t.Errorf("%d of %d copy drills search for a name of the user's world", known, len(fresh))
	}
	roles := map[string]int{}
	length := map[string]int{}
	for _, e := range eps {
		if roles[e.Role] == 0 && os.Getenv("DUMP") != "" {
			t.Logf("%s:\n%s", e.Role, tok.Decode(e.Tokens))
		}
		roles[e.Role]++
		length[e.Role] += len(e.Tokens)
		if len(e.Mask) != len(e.Tokens) {
			t.Fatalf("%s episode: %d mask entries for %d tokens", e.Role, len(e.Mask), len(e.Tokens))
		}
		var trained []int32
		for i, id := range e.Tokens {
			switch e.Mask[i] {
			case 1:
				trained = append(trained, id)
			case 0.25: // the prompt and inserted results, at --context-weight
			default:
				t.Fatalf("%s episode: mask %v at token %d, want 1 or the context weight", e.Role, e.Mask[i], i)
			}
		}
		full := tok.Decode(e.Tokens)
		own := tok.Decode(trained)
		if strings.Contains(own, "<information>") || strings.Contains(own, "<|im_start|>") {
			t.Errorf("%s episode trains on inserted or prompt text: %q", e.Role, own)
		}
		searches := strings.Count(own, "<search>")
		switch want := map[string]int{"solver": e.Hops, "proposer": e.Hops + 1, "rag": 0}[e.Role]; {
		case searches != want:
			t.Errorf("%s episode of %d hops searches %d times, want %d: %q", e.Role, e.Hops, searches, want, own)
		}
		final := map[string]string{"solver": "answer", "rag": "answer", "proposer": "question"}[e.Role]
		if !strings.HasSuffix(own, "</"+final+">") {
			t.Errorf("%s episode does not end with its final tag: %q", e.Role, own)
		}
		if e.Role != "rag" && !strings.Contains(full, "<information>Doc 1(Title:") {
			t.Errorf("%s episode has no inserted search results: %q", e.Role, full)
		}
		if e.Role != "proposer" {
			if ans, ok := score.ExtractAnswer(full); !ok || ans == "" {
				t.Errorf("%s episode: no answer extracted from %q", e.Role, full)
			}
		}
	}
	for _, r := range []string{"solver", "proposer", "rag"} {
		if roles[r] == 0 {
			t.Fatalf("no %s episodes (dropped: %v)", r, dropped)
		}
		t.Logf("%s: %d episodes, mean %d tokens", r, roles[r], length[r]/roles[r])
	}
	if roles["solver"] < len(qs)*3/4 {
		t.Errorf("only %d solver episodes from %d questions (dropped: %v)", roles["solver"], len(qs), dropped)
	}

	// --protocol-roles proposer,rag: no solver episode, and a proposer and
	// a RAG episode for every question (not one in two) whose chain the
	// searches show. (Mutations: ignoring the roles when building the
	// solver's episodes, or keeping the one-in-two rule, fail this.)
	maker.opts.ProtocolRoles = []string{"proposer", "rag"}
	maker.rng = rand.New(rand.NewPCG(1, 2))
	eps, _, err = maker.make(context.Background(), qs)
	if err != nil {
		t.Fatal(err)
	}
	only := map[string]int{}
	for _, e := range eps {
		only[e.Role]++
	}
	if only["solver"] != 0 || only["proposer"] < len(qs)*3/4 || only["rag"] < len(qs)*3/4 {
		t.Errorf("--protocol-roles proposer,rag from %d questions gave %v episodes", len(qs), only)
	}

	// --rag-decoy-share: without it every RAG episode shows the answer's
	// own page; with share 1 every one also shows the page of another
	// entity of the answer's kind, and about half no longer show the
	// answer's page, while the trained answer stays the question's.
	// (Mutations: a decoy of any kind, or never dropping the answer's
	// page, fail this.)
	byName := map[string]*world.Entity{}
	for _, e := range g.Entities {
		for _, n := range e.Answers() {
			byName[n] = e
		}
	}
	byQuestion := map[string]world.Question{}
	for _, q := range qs {
		byQuestion[q.Question] = q
	}
	title := regexp.MustCompile(`Doc \d+\(Title: "([^"]+)"\)`)
	for _, share := range []float64{0, 1} {
		maker.opts.ProtocolRoles = []string{"rag"}
		maker.opts.RAGDecoyShare = share
		maker.rng = rand.New(rand.NewPCG(1, 2))
		eps, _, err = maker.make(context.Background(), qs)
		if err != nil {
			t.Fatal(err)
		}
		var n, withAnswerPage, withDecoy int
		for _, e := range eps {
			full := tok.Decode(e.Tokens)
			_, rest, _ := strings.Cut(full, "\nQuestion: ")
			question, _, _ := strings.Cut(rest, "\n")
			q, ok := byQuestion[question]
			if !ok {
				t.Fatalf("RAG episode asks %q, not one of the questions", question)
			}
			answer := q.Path()[len(q.Path())-1]
			if got, _ := score.ExtractAnswer(full); !slices.Contains(answer.Answers(), got) {
				t.Errorf("RAG episode for %q answers %q, want %s", question, got, answer.Name)
			}
			n++
			hasAnswer, hasDecoy := false, false
			for _, m := range title.FindAllStringSubmatch(full, -1) {
				switch e := byName[m[1]]; {
				case e == answer:
					hasAnswer = true
				case e != nil && e.Kind == answer.Kind && !slices.Contains(q.Path(), e):
					hasDecoy = true
				}
			}
			if hasAnswer {
				withAnswerPage++
			}
			if hasDecoy {
				withDecoy++
			}
		}
		t.Logf("--rag-decoy-share %g: %d RAG episodes, %d with the answer's page, %d with a page of its kind off the chain", share, n, withAnswerPage, withDecoy)
		switch {
		case n < len(qs)/2:
			t.Errorf("--rag-decoy-share %g: %d RAG episodes from %d questions", share, n, len(qs))
		case share == 0 && withAnswerPage < n*9/10:
			t.Errorf("without decoys %d of %d RAG episodes show the answer's page", withAnswerPage, n)
		case share == 1 && withDecoy < n*9/10:
			t.Errorf("--rag-decoy-share 1: %d of %d RAG episodes show a decoy page", withDecoy, n)
		case share == 1 && (withAnswerPage < n/4 || withAnswerPage > n*3/4):
			t.Errorf("--rag-decoy-share 1: %d of %d RAG episodes show the answer's page, want about half", withAnswerPage, n)
		}
	}
}

// TestRun bootstraps a very small model for a few steps and loads what it
// wrote as an HF model directory.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	dir := tinyWorld(t)
	out := filepath.Join(t.TempDir(), "model")
	o := DefaultOptions()
	o.World, o.Out = dir, out
	o.VocabSize, o.Hidden, o.Layers, o.Heads, o.KVHeads, o.Intermediate = 400, 16, 1, 2, 1, 32
	o.LMSteps, o.CopySteps, o.ProtocolSteps, o.BatchSize, o.SeqLen = 2, 2, 2, 2, 32
	o.ProbeQuestions = 4
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.LMLoss) != 2 || len(rep.CopyLoss) != 2 || len(rep.ProtocolLoss) != 2 || rep.Parameters == 0 || len(rep.Probe) != 2 {
		t.Errorf("report: %+v", rep)
	}
	if rep.Episodes["drill"] == 0 || rep.DrillTokens == 0 || rep.Probe[0].Phase != "copy" || rep.Probe[1].Phase != "protocol" {
		t.Errorf("copy phase: %d drills, %d tokens, probes %+v", rep.Episodes["drill"], rep.DrillTokens, rep.Probe)
	}
	m, err := model.Load(out, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	tok, err := tokenizer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 400 {
		t.Errorf("vocabulary %d, want 400", tok.VocabSize())
	}
	data, err := os.ReadFile(filepath.Join(out, "bootstrap.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || back.Parameters != rep.Parameters {
		t.Errorf("bootstrap.json: %v %+v", err, back)
	}
	// Continuing from the result keeps its tokenizer and shape.
	o2 := o
	o2.Init, o2.Out, o2.LMSteps, o2.CopySteps, o2.ProtocolSteps = out, filepath.Join(t.TempDir(), "more"), 1, 0, 1
	o2.Hidden = 999 // ignored with Init
	// Half the protocol steps on copy drills: drills are made though the
	// copy phase has no steps.
	o2.ProtocolSteps, o2.DrillShare = 2, 0.5
	rep2, err := Run(context.Background(), o2)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Episodes["drill"] == 0 || rep2.ProtocolDrillSteps != 1 || len(rep2.CopyLoss) != 0 {
		t.Errorf("protocol phase with drill share 0.5: %d drills, %d drill steps of 2, copy loss %v; want drills, 1 step, no copy phase",
			rep2.Episodes["drill"], rep2.ProtocolDrillSteps, rep2.CopyLoss)
	}
	// The probe runs the proposer and the RAG check too.
	for _, pt := range rep2.Probe {
		if pt.ProposerExample == "" || pt.Proposed < 0 || pt.Proposed > 100 || pt.RAGPassed > pt.Proposed {
			t.Errorf("proposer probe: %.1f%% proposed, %.1f%% passed, example %q", pt.Proposed, pt.RAGPassed, pt.ProposerExample)
		}
	}
	if rep2.Parameters != rep.Parameters || rep2.VocabSize != 400 {
		t.Errorf("continued run: %d parameters, vocabulary %d; want %d, 400", rep2.Parameters, rep2.VocabSize, rep.Parameters)
	}
	if _, err := tokenizer.Load(o2.Out); err != nil {
		t.Errorf("continued run lost its tokenizer: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary directory %s left behind", e.Name())
		}
	}
}

// TestDrillSteps checks that the copy-drill steps of the protocol phase
// are DrillShare of its steps, spread evenly rather than bunched.
func TestDrillSteps(t *testing.T) {
	o := Options{ProtocolSteps: 8, DrillShare: 0.25, CopySteps: 5}
	var at []int
	for step := range o.ProtocolSteps {
		if o.drillStep(step) {
			at = append(at, step)
		}
	}
	if !slices.Equal(at, []int{3, 7}) || o.drillSteps() != 7 {
		t.Errorf("share 0.25 of 8 steps: drill steps %v, %d drill steps with 5 copy steps; want [3 7], 7", at, o.drillSteps())
	}
	o.ProtocolSteps, o.DrillShare = 300, 0.5
	if n := o.drillSteps() - o.CopySteps; n != 150 {
		t.Errorf("share 0.5 of 300 steps: %d drill steps, want 150", n)
	}
	if o.DrillShare = 0; o.drillSteps() != o.CopySteps {
		t.Errorf("share 0: %d drill steps, want the %d copy steps", o.drillSteps(), o.CopySteps)
	}
}

func TestOptionErrors(t *testing.T) {
	dir := tinyWorld(t)
	// An index of another corpus (a world of another seed).
	other := t.TempDir()
	g, _ := world.Generate(9, world.Sizes["tiny"])
	g.Size.Distractors = 3 // a different passage count
	if _, err := g.Write(other); err != nil {
		t.Fatal(err)
	}
	src, _ := corpus.Open(filepath.Join(other, world.Files.Corpus), corpus.FormatJSONL)
	otherIndex := filepath.Join(t.TempDir(), "ix")
	if _, err := index.Build(context.Background(), src.Docs(context.Background()), otherIndex, index.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		mutate     func(*Options)
	}{
		{"no world", "--world", func(o *Options) { o.World = "" }},
		{"missing world", "world.json", func(o *Options) { o.World = filepath.Join(dir, "nope") }},
		{"small vocab", "--vocab-size", func(o *Options) { o.VocabSize = 100 }},
		{"bad heads", "--heads", func(o *Options) { o.Heads = 3 }},
		{"zero lr", "lr", func(o *Options) { o.LR = 0 }},
		{"unknown prompts", "--game.prompts", func(o *Options) { o.Prompts = "verbose" }},
		{"no documents per search", "--agent.top_k", func(o *Options) { o.TopK = 0 }},
		{"drill share of one", "--protocol-drill-share", func(o *Options) { o.DrillShare = 1 }},
		{"unknown role", "--protocol-roles", func(o *Options) { o.ProtocolRoles = []string{"proposer", "judge"} }},
		{"wrong index", "holds", func(o *Options) {
			o.LMSteps, o.Hidden, o.Layers, o.Heads, o.KVHeads, o.Intermediate, o.VocabSize = 0, 16, 1, 2, 1, 16, 400
			o.Index = otherIndex
		}},
	} {
		o := DefaultOptions()
		o.World, o.Out = dir, filepath.Join(t.TempDir(), "m")
		c.mutate(&o)
		if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}

// TestNamesAreSyllableTokens checks that the world tokenizer cuts every
// name of the world into its syllables, one token each, wherever the name
// stands: a held-out name is then a sequence of tokens the model has seen
// many times.
func TestNamesAreSyllableTokens(t *testing.T) {
	g, err := world.Generate(1, world.Sizes["small"])
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, p := range g.Passages() {
		texts = append(texts, p.Contents)
	}
	bpe, err := tokenizer.TrainBPE(context.Background(), trainingTexts(texts, mustPrompts(t, selfplay.PromptsMinimal)), tokenizer.TrainOptions{
		VocabSize: 1024, AddedTokens: AddedTokens, SpecialCount: 3, EOSToken: "<|im_end|>",
		SplitPiece: splitNamePiece, InitialMerges: syllableMerges(),
	})
	if err != nil {
		t.Fatal(err)
	}
	bpe.DropCrossingMerges(nameParts(g))
	dir := t.TempDir()
	if err := bpe.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range g.Entities {
		for _, w := range strings.Fields(e.Name) {
			syl, ok := world.NameSyllables(w)
			if !ok {
				continue
			}
			for _, lead := range []string{" ", "", "(", "\"\n"} {
				ids := tok.Encode(lead + w)
				var got []string
				for _, id := range ids {
					got = append(got, tok.Decode([]int32{id}))
				}
				want := slices.Clone(syl)
				if lead == " " {
					want[0] = " " + want[0]
				} else if lead != "" {
					// punctuation may or may not join the first syllable
					got = got[len(got)-len(syl):]
					got[0] = strings.TrimLeft(got[0], lead)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%q is tokenised as %q, want its syllables %q", lead+w, got, want)
				}
				checked++
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d name words checked", checked)
	}
}

func TestPackRows(t *testing.T) {
	ep := func(n int) episode {
		e := episode{Tokens: make([]int32, n), Mask: make([]float32, n)}
		for i := range e.Tokens {
			e.Tokens[i] = int32(n)
			e.Mask[i] = float32(i % 2)
		}
		return e
	}
	rows, masks := packRows([]episode{ep(3), ep(4), ep(2), ep(9), ep(1)}, 8)
	var lens []int
	for i, r := range rows {
		lens = append(lens, len(r))
		if len(masks[i]) != len(r) {
			t.Fatalf("row %d: %d mask entries for %d tokens", i, len(masks[i]), len(r))
		}
	}
	// 3+4 fit in 8; 2 starts a row; 9 is too long for any row and gets
	// its own; 1 goes into the first row with room (first fit), filling it.
	if want := []int{8, 2, 9}; !slices.Equal(lens, want) {
		t.Fatalf("row lengths %v, want %v", lens, want)
	}
	if want := []int32{3, 3, 3, 4, 4, 4, 4, 1}; !slices.Equal(rows[0], want) {
		t.Errorf("row 0 = %v, want %v", rows[0], want)
	}
	if want := []float32{0, 1, 0, 0, 1, 0, 1, 0}; !slices.Equal(masks[0], want) {
		t.Errorf("mask of row 0 = %v, want %v", masks[0], want)
	}
	// Every token is packed once.
	total := 0
	for _, r := range rows {
		total += len(r)
	}
	if total != 3+4+2+9+1 {
		t.Errorf("%d tokens packed, want 19", total)
	}
}

func mustPrompts(t *testing.T, name string) selfplay.PromptSet {
	t.Helper()
	p, err := selfplay.Prompts(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkDrills checks the copy drills against the solver episodes of the
// same questions: the same turns, the same answer, results cut to the
// sentences naming the entity to copy next plus at most two, and shorter.
func checkDrills(t *testing.T, maker *episodeMaker, tok *tokenizer.Tokenizer, qs []world.Question, eps []episode) {
	t.Helper()
	drills, dropped, err := maker.drills(context.Background(), qs)
	if err != nil {
		t.Fatal(err)
	}
	if len(drills) < len(qs)*3/4 {
		t.Fatalf("only %d drills from %d questions (dropped: %v)", len(drills), len(qs), dropped)
	}
	var solverTokens, drillTokens int
	for _, e := range eps {
		if e.Role == "solver" {
			solverTokens += len(e.Tokens)
		}
	}
	for i, d := range drills {
		if d.Role != "drill" {
			t.Fatalf("drill %d has role %q", i, d.Role)
		}
		drillTokens += len(d.Tokens)
		full := tok.Decode(d.Tokens)
		var own []int32
		for j, m := range d.Mask {
			if m == 1 {
				own = append(own, d.Tokens[j])
			}
		}
		ownText := tok.Decode(own)
		if got := strings.Count(ownText, "<search>"); got != d.Hops {
			t.Errorf("drill of %d hops searches %d times: %q", d.Hops, got, ownText)
		}
		ans, ok := score.ExtractAnswer(full)
		if !ok || ans == "" {
			t.Errorf("drill has no answer: %q", full)
		}
		// Every results block keeps few sentences: the model is drilled on
		// picking the name out of a short text.
		for _, block := range strings.Split(full, "<information>")[1:] {
			body, _, _ := strings.Cut(block, "</information>")
			if n := len(splitSentences(body)); n > 5 {
				t.Errorf("a drill's results block keeps %d sentences: %q", n, body)
			}
		}
	}
	if os.Getenv("DUMP") != "" {
		t.Logf("drill:\n%s", tok.Decode(drills[0].Tokens))
	}
	// Drills are shorter than the solver's episodes of the same questions
	// (measured: 0.75 on this tiny world, whose passages are short; the
	// prompt is the same).
	if ratio := float64(drillTokens) / float64(solverTokens); ratio > 0.85 {
		t.Errorf("drills have %d tokens against %d of the solver episodes (%.2f), want them much shorter", drillTokens, solverTokens, ratio)
	}
}

func TestSplitSentences(t *testing.T) {
	got := splitSentences("Mewo C. Dolo was born in Lina; Mewo Dolo is an architect by trade. Mewo C. Dolo was employed by the Kari Works. The first work of Mewo C. Dolo was The Geje Letters.")
	want := []string{"Mewo C. Dolo was born in Lina; Mewo Dolo is an architect by trade.", "Mewo C. Dolo was employed by the Kari Works.", "The first work of Mewo C. Dolo was The Geje Letters."}
	if !slices.Equal(got, want) {
		t.Errorf("splitSentences = %q, want %q", got, want)
	}
}

func TestShortenHits(t *testing.T) {
	doc := search.Document{ID: "1", Contents: "\"Kizi Pore\"\nKizi Pore was born in Pepo. Kizi Pore is a physician. Kizi Pore worked for the Kogizo Press. Kizi Pore wrote The Lafo Mirror. The first work of Kizi Pore was The Lafo Mirror."}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		h := shortenHits([]search.Hit{{Document: doc}}, []string{"The Lafo Mirror"}, 2, rng)[0]
		title, text, _ := strings.Cut(h.Document.Contents, "\n")
		if title != "\"Kizi Pore\"" {
			t.Fatalf("title line %q", title)
		}
		s := splitSentences(text)
		named := 0
		for _, x := range s {
			if strings.Contains(x, "The Lafo Mirror") {
				named++
			}
		}
		if named != 2 || len(s) > 4 {
			t.Fatalf("kept %q: want both sentences naming the answer and at most two others", s)
		}
		// Order is kept: the sentences are a subsequence of the document's.
		all := splitSentences(strings.SplitN(doc.Contents, "\n", 2)[1])
		j := 0
		for _, x := range s {
			for j < len(all) && all[j] != x {
				j++
			}
			if j == len(all) {
				t.Fatalf("kept %q: not in the document's order", s)
			}
		}
	}
}
