package selfplay

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPoolTakeHardest(t *testing.T) {
	p := &ProblemPool{}
	p.Add(Problem{Question: "easy one?", SuccessRate: 1, AddedStep: 1}, 10)
	p.Add(Problem{Question: "hard one?", SuccessRate: 0.2, AddedStep: 1}, 10)
	p.Add(Problem{Question: "medium one?", SuccessRate: 0.6, AddedStep: 2}, 10)
	p.Add(Problem{Question: "Hard one", SuccessRate: 0.4, AddedStep: 3}, 10) // same normalised question: updated
	if len(p.Problems) != 3 {
		t.Fatalf("pool has %d problems, want 3", len(p.Problems))
	}
	got := p.Take(4, 0.8, PoolOrderHardest, newTestRand())
	var qs []string
	for _, prob := range got {
		qs = append(qs, prob.Question)
	}
	// Eligible: hard (0.4), medium (0.6); cycled to fill 4 slots.
	if want := []string{"hard one?", "medium one?", "hard one?", "medium one?"}; !reflect.DeepEqual(qs, want) {
		t.Fatalf("Take = %q, want %q", qs, want)
	}
	if p.Take(2, 0.1, PoolOrderHardest, newTestRand()) != nil {
		t.Fatal("no problem qualifies, Take must return nil")
	}
}

func TestPoolTakeTieBreaks(t *testing.T) {
	p := &ProblemPool{Problems: []Problem{
		{Question: "old", SuccessRate: 0.5, AddedStep: 1},
		{Question: "new", SuccessRate: 0.5, AddedStep: 5},
		{Question: "used", SuccessRate: 0.5, AddedStep: 9, Uses: 3},
	}}
	got := p.Take(1, 1, PoolOrderHardest, newTestRand())
	if got[0].Question != "new" || p.Problems[1].Uses != 1 {
		t.Fatalf("Take = %+v; pool %+v", got, p.Problems)
	}
}

func TestPoolClearMaxSizeAndSave(t *testing.T) {
	p := &ProblemPool{}
	for i, s := range []float64{0.9, 0.1, 0.5, 0.3} {
		p.Add(Problem{Question: string(rune('a'+i)) + " question", SuccessRate: s}, 3)
	}
	// Max size 3 drops the easiest (0.9).
	if len(p.Problems) != 3 || p.Problems[2].SuccessRate != 0.5 {
		t.Fatalf("after max size: %+v", p.Problems)
	}
	path := filepath.Join(t.TempDir(), "pool.json")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadPool(path)
	if err != nil || !reflect.DeepEqual(back, p) {
		t.Fatalf("LoadPool = %+v, %v", back, err)
	}
	p.Clear(0.5) // keeps int(3*0.5) = 1, the hardest
	if len(p.Problems) != 1 || p.Problems[0].SuccessRate != 0.1 {
		t.Fatalf("after clear: %+v", p.Problems)
	}
	p.Clear(0)
	if len(p.Problems) != 0 {
		t.Fatalf("clear(0) kept %d", len(p.Problems))
	}
}

// TestPoolTakeInformative: questions some rollouts solved come first (all of
// them before any unsolved or always-solved one), in a random order; the
// rest fill the remaining slots.
func TestPoolTakeInformative(t *testing.T) {
	p := &ProblemPool{Problems: []Problem{
		{Question: "unsolved", SuccessRate: 0},
		{Question: "half", SuccessRate: 0.5},
		{Question: "solved", SuccessRate: 1},
		{Question: "quarter", SuccessRate: 0.25},
		{Question: "most", SuccessRate: 0.75},
	}}
	firsts := map[string]bool{}
	for seed := range uint64(20) {
		got := p.Take(5, 1, PoolOrderInformative, rand.New(rand.NewPCG(seed, 1)))
		for k, prob := range got[:3] {
			if s := prob.SuccessRate; s == 0 || s == 1 {
				t.Fatalf("seed %d: slot %d holds %q (s = %v) before an informative question", seed, k, prob.Question, s)
			}
		}
		if rest := map[string]bool{got[3].Question: true, got[4].Question: true}; !rest["unsolved"] || !rest["solved"] {
			t.Fatalf("seed %d: the rest %q, %q", seed, got[3].Question, got[4].Question)
		}
		firsts[got[0].Question] = true
	}
	if len(firsts) != 3 {
		t.Fatalf("informative questions are not picked at random: first picks %v", firsts)
	}
	// pool.max_success_rate still bounds the choice.
	for _, prob := range p.Take(4, 0.5, PoolOrderInformative, newTestRand()) {
		if prob.SuccessRate > 0.5 {
			t.Fatalf("took %q with s = %v above 0.5", prob.Question, prob.SuccessRate)
		}
	}
	// Random order draws from everything eligible.
	seen := map[string]bool{}
	for seed := range uint64(20) {
		seen[p.Take(1, 1, PoolOrderRandom, rand.New(rand.NewPCG(seed, 2)))[0].Question] = true
	}
	if len(seen) < 4 {
		t.Fatalf("random order picked only %v", seen)
	}
}

func TestOpenRunDirRefusesForeignData(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "notes.txt")
	os.WriteFile(file, []byte("mine"), 0o644)
	foreign := filepath.Join(root, "home")
	os.Mkdir(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "config.yaml"), []byte("mine: 1\n"), 0o644)
	for _, dir := range []string{file, foreign} {
		if rd, err := OpenRunDir(dir, testConfig(), 0); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("run.out %s: err = %v", dir, err)
			if rd != nil {
				rd.Close()
			}
		}
	}
	if data, _ := os.ReadFile(filepath.Join(foreign, "config.yaml")); string(data) != "mine: 1\n" {
		t.Errorf("config.yaml of a foreign directory overwritten: %q", data)
	}
	// A fresh run directory is marked and reopened for a resume.
	run := filepath.Join(root, "run")
	for step := range 2 {
		rd, err := OpenRunDir(run, testConfig(), step)
		if err != nil {
			t.Fatal(err)
		}
		rd.Close()
	}
}
