package selfplay

import (
	"math"
	"reflect"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-4 }

func TestSolverReward(t *testing.T) {
	tests := []struct {
		correct bool
		tags    int
		maxTags int
		want    float64
	}{
		{true, 1, 1, 1},
		{true, 0, 1, 1}, // extracted by other means; one answer at most
		{true, 2, 1, 0.25},
		{true, 5, 1, 0.25},
		{true, 2, 10, 1},
		{true, 10, 10, 1},
		{true, 11, 10, 0.25},
		{false, 1, 10, 0},
		{false, 3, 1, 0},
	}
	for _, tt := range tests {
		if got := SolverReward(tt.correct, tt.tags, tt.maxTags, 4); got != tt.want {
			t.Errorf("SolverReward(%v, %d, %d, 4) = %v, want %v", tt.correct, tt.tags, tt.maxTags, got, tt.want)
		}
	}
}

func TestProposerReward(t *testing.T) {
	tests := []struct {
		s    float64
		kind string
		want float64
	}{
		{0, "1-acc", 1}, {0.4, "1-acc", 0.6}, {1, "1-acc", 0},
		{0, "intermediate", 0}, {0.5, "intermediate", 1}, {0.2, "intermediate", 0.64}, {1, "intermediate", 0},
	}
	for _, tt := range tests {
		if got := ProposerReward(tt.s, tt.kind); !near(got, tt.want) {
			t.Errorf("ProposerReward(%v, %q) = %v, want %v", tt.s, tt.kind, got, tt.want)
		}
	}
}

func TestGRPOAdvantages(t *testing.T) {
	// Group 7: rewards 1,0,0,0,0 → mean 0.2, unbiased std √0.2 ≈ 0.44721:
	// 0.8/0.44721 = 1.78885 and -0.2/0.44721 = -0.44721.
	// Group 3: all equal → 0. Groups 9 and 4: a single rollout → its reward
	// (verl's mean 0, std 1 for a group of one).
	rewards := []float64{1, 0, 0.5, 0, 0, 0.5, 0, 0.75, -1}
	groups := []int{7, 7, 3, 7, 7, 3, 7, 9, 4}
	want := []float64{1.78885, -0.44721, 0, -0.44721, -0.44721, 0, -0.44721, 0.75, -1}
	got := GRPOAdvantages(rewards, groups, 1e-6)
	for i := range want {
		if !near(got[i], want[i]) {
			t.Fatalf("GRPOAdvantages = %v, want %v", got, want)
		}
	}
}

func TestWhitenedAdvantages(t *testing.T) {
	// Rewards 0.25,-1,-1,-1: mean -0.6875, unbiased std 0.625 →
	// 0.9375/0.625 = 1.5 and -0.3125/0.625 = -0.5.
	got := WhitenedAdvantages([]float64{0.25, -1, -1, -1}, 1e-6)
	want := []float64{1.5, -0.5, -0.5, -0.5}
	for i := range want {
		if !near(got[i], want[i]) {
			t.Fatalf("WhitenedAdvantages = %v, want %v", got, want)
		}
	}
}

func TestTokenAdvantages(t *testing.T) {
	mask := []float32{0, 0, 1, 1, 0, 0, 1}
	got := TokenAdvantages(-0.5, mask)
	want := []float32{0, 0, -0.5, -0.5, 0, 0, -0.5}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("TokenAdvantages = %v, want %v", got, want)
	}
}
