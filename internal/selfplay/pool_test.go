package selfplay

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestPoolTakePrefersHard(t *testing.T) {
	p := &ProblemPool{}
	p.Add(Problem{Question: "easy one?", SuccessRate: 1, AddedStep: 1}, 10)
	p.Add(Problem{Question: "hard one?", SuccessRate: 0.2, AddedStep: 1}, 10)
	p.Add(Problem{Question: "medium one?", SuccessRate: 0.6, AddedStep: 2}, 10)
	p.Add(Problem{Question: "Hard one", SuccessRate: 0.4, AddedStep: 3}, 10) // same normalised question: updated
	if len(p.Problems) != 3 {
		t.Fatalf("pool has %d problems, want 3", len(p.Problems))
	}
	got := p.Take(4, 0.8)
	var qs []string
	for _, prob := range got {
		qs = append(qs, prob.Question)
	}
	// Eligible: hard (0.4), medium (0.6); cycled to fill 4 slots.
	if want := []string{"hard one?", "medium one?", "hard one?", "medium one?"}; !reflect.DeepEqual(qs, want) {
		t.Fatalf("Take = %q, want %q", qs, want)
	}
	if p.Take(2, 0.1) != nil {
		t.Fatal("no problem qualifies, Take must return nil")
	}
}

func TestPoolTakeTieBreaks(t *testing.T) {
	p := &ProblemPool{Problems: []Problem{
		{Question: "old", SuccessRate: 0.5, AddedStep: 1},
		{Question: "new", SuccessRate: 0.5, AddedStep: 5},
		{Question: "used", SuccessRate: 0.5, AddedStep: 9, Uses: 3},
	}}
	got := p.Take(1, 1)
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
