package model

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
)

// TestSessionMatchesGenerate plays three turns of an agent-like loop: each
// turn continues some of the previous sequences with inserted tokens of
// varying lengths, drops finished ones and brings a new prompt and one that
// shares only part of a kept prefix. A session must produce what
// Model.Generate produces on the full prompts, while computing only the
// tokens after the kept prefixes.
func TestSessionMatchesGenerate(t *testing.T) {
	for _, family := range []string{"llama", "qwen2", "qwen3"} {
		t.Run(family, func(t *testing.T) {
			m := tinyModel(t, family, 31)
			// MaxBatch 2 splits every call into several batches, so rows
			// come back from different kept caches.
			small, err := Init(m.Config, 31, LoadOptions{Backend: "go", MaxBatch: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, temp := range []float32{0, 1} {
				checkSessionTurns(t, m, small, temp)
			}
		})
	}
}

// checkSameGenerations fails unless a session's generations have the
// tokens and finish reasons of Generate's, with log-probs within 1e-4.
func checkSameGenerations(t *testing.T, label string, got, want []Generation) {
	t.Helper()
	for i := range want {
		if !slices.Equal(got[i].Tokens, want[i].Tokens) || got[i].FinishReason != want[i].FinishReason {
			t.Fatalf("%s prompt %d: session %v (%s), generate %v (%s)", label, i,
				got[i].Tokens, got[i].FinishReason, want[i].Tokens, want[i].FinishReason)
		}
		for k := range want[i].LogProbs {
			if d := math.Abs(float64(got[i].LogProbs[k] - want[i].LogProbs[k])); d > 1e-4 {
				t.Errorf("%s prompt %d token %d: log-prob %g in session, %g", label, i, k,
					got[i].LogProbs[k], want[i].LogProbs[k])
			}
		}
	}
}

func checkSessionTurns(t *testing.T, plain, m *Model, temperature float32) {
	t.Helper()
	ctx := context.Background()
	sess := m.NewSession()
	defer sess.Close()
	prompts := [][]int32{{5, 6, 7}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, {42}}
	// Bounds on the prompt tokens a session reuses: a continued sequence
	// reuses all of its tokens, or all but the last sampled one when that
	// token ended its batch's decoding and was never fed back.
	minReused, maxReused, pendingMin, pendingMax := 0, 0, 0, 0
	var eos []int32
	for turn := range 3 {
		minReused, maxReused = minReused+pendingMin, maxReused+pendingMax
		req := GenerateRequest{Prompts: prompts, MaxNewTokens: 5 + turn, Temperature: temperature,
			Seed: int64(turn), EOSTokenIDs: eos}
		want, err := plain.Generate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sess.Generate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		checkSameGenerations(t, fmt.Sprintf("T=%g turn %d", temperature, turn), got, want)
		// The next turn: every sequence but the first continues with
		// inserted tokens; a fresh prompt and one that diverges after two
		// tokens of the first sequence join.
		var next [][]int32
		pendingMin, pendingMax = 2, 2
		for i := 1; i < len(prompts); i++ {
			full := append(slices.Clone(prompts[i]), want[i].Tokens...)
			pendingMin += len(full) - 1
			pendingMax += len(full)
			insert := make([]int32, 3+4*i)
			for k := range insert {
				insert[k] = int32(10 + k + turn)
			}
			next = append(next, append(full, insert...))
		}
		diverging := append(slices.Clone(prompts[0][:2]), 60, 61)
		next = append(next, []int32{int32(50 + turn), 7, 7, 7}, diverging)
		prompts = next
		// Later turns end some rows early, leaving holes in the caches.
		if eos == nil {
			eos = []int32{want[1].Tokens[2]}
		}
	}
	if got := sess.Stats().Reused; got < minReused || got > maxReused {
		t.Errorf("T=%g: %d prompt tokens reused, want %d..%d", temperature, got, minReused, maxReused)
	}
}

// TestSessionRepeatedPrompts: copies of one prompt (the rollouts of one
// question) are prefilled once and sampled apart, as Generate samples them.
func TestSessionRepeatedPrompts(t *testing.T) {
	ctx := context.Background()
	plain := tinyModel(t, "qwen3", 12)
	for _, maxBatch := range []int{64, 2} {
		m, err := Init(plain.Config, 12, LoadOptions{Backend: "go", MaxBatch: maxBatch})
		if err != nil {
			t.Fatal(err)
		}
		a := []int32{3, 1, 4, 1, 5, 9, 2, 6}
		c := []int32{8, 8, 9}
		prompts := [][]int32{a, a, {7}, a, c, c}
		req := GenerateRequest{Prompts: prompts, MaxNewTokens: 6, Temperature: 1, Seed: 5}
		want, err := plain.Generate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		sess := m.NewSession()
		got, err := sess.Generate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		checkSameGenerations(t, fmt.Sprintf("max batch %d", maxBatch), got, want)
		if slices.Equal(got[0].Tokens, got[1].Tokens) && slices.Equal(got[1].Tokens, got[3].Tokens) {
			t.Errorf("copies of one prompt sampled the same continuation %v", got[0].Tokens)
		}
		// a and c are run once without their last token; each copy runs
		// that token.
		st := sess.Stats()
		if wantReused, wantComputed := 3*(len(a)-1)+2*(len(c)-1), (len(a)-1)+(len(c)-1)+5+1; st.Reused != wantReused || st.Computed != wantComputed {
			t.Errorf("max batch %d: reused %d, computed %d prompt tokens; want %d and %d", maxBatch, st.Reused, st.Computed, wantReused, wantComputed)
		}
		sess.Close()
		m.Close()
	}
}
