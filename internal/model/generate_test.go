package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestGenerateBatchIndependence(t *testing.T) {
	m := tinyModel(t, "qwen2", 5)
	ctx := context.Background()
	prompts := [][]int32{{5, 6, 7}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}, {42}}
	req := GenerateRequest{Prompts: prompts, MaxNewTokens: 6}
	batched, err := m.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range prompts {
		alone, err := m.Generate(ctx, GenerateRequest{Prompts: [][]int32{p}, MaxNewTokens: 6})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(alone[0].Tokens, batched[i].Tokens) {
			t.Errorf("prompt %d: alone %v, in a batch %v", i, alone[0].Tokens, batched[i].Tokens)
		}
		for j := range alone[0].LogProbs {
			if d := math.Abs(float64(alone[0].LogProbs[j] - batched[i].LogProbs[j])); d > 1e-4 {
				t.Errorf("prompt %d token %d: log-prob %g alone, %g batched", i, j, alone[0].LogProbs[j], batched[i].LogProbs[j])
			}
		}
	}
}

// TestGenerateOnToken checks that OnToken sees every generated token of
// every prompt, in order, through both Generate and a Session.
func TestGenerateOnToken(t *testing.T) {
	m := tinyModel(t, "qwen2", 5)
	prompts := [][]int32{{5, 6, 7}, {1, 2, 3, 4, 5, 6}, {42}}
	for _, gen := range []interface {
		Generate(context.Context, GenerateRequest) ([]Generation, error)
	}{m, m.NewSession()} {
		streamed := make([][]int32, len(prompts))
		req := GenerateRequest{Prompts: prompts, MaxNewTokens: 7, Temperature: 1, Seed: 3, EOSTokenIDs: []int32{9},
			OnToken: func(p int, tok int32) { streamed[p] = append(streamed[p], tok) }}
		gens, err := gen.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range gens {
			if !slices.Equal(streamed[i], g.Tokens) {
				t.Errorf("%T prompt %d: streamed %v, generated %v", gen, i, streamed[i], g.Tokens)
			}
		}
	}
}

func TestGenerateSampling(t *testing.T) {
	m := tinyModel(t, "llama", 6)
	ctx := context.Background()
	prompts := [][]int32{{1, 2, 3}, {1, 2, 3}}
	req := GenerateRequest{Prompts: prompts, MaxNewTokens: 10, Temperature: 1.5, TopP: 0.9, TopK: 20, Seed: 7}
	a, err := m.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a[0].Tokens, b[0].Tokens) || !slices.Equal(a[1].Tokens, b[1].Tokens) {
		t.Errorf("same seed, different samples: %v vs %v", a, b)
	}
	if slices.Equal(a[0].Tokens, a[1].Tokens) {
		t.Errorf("two rows sampled identical continuations %v; rows should draw from their own streams", a[0].Tokens)
	}
	req.Seed = 8
	c, err := m.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a[0].Tokens, c[0].Tokens) {
		t.Errorf("different seeds gave the same sample %v", a[0].Tokens)
	}
	// Reported log-probs are those of the model at the sampling temperature,
	// before top-k and top-p.
	for i, g := range a {
		scored, err := m.TokenLogProbs(ctx, [][]int32{append(append([]int32(nil), prompts[i]...), g.Tokens...)}, []float32{1.5})
		if err != nil {
			t.Fatal(err)
		}
		for j, lp := range g.LogProbs {
			if d := math.Abs(float64(lp - scored[0][len(prompts[i])+j])); d > 1e-4 {
				t.Errorf("row %d token %d: log-prob %g, scored %g", i, j, lp, scored[0][len(prompts[i])+j])
			}
		}
	}
}

func TestSampleTokenFilters(t *testing.T) {
	logits := []float32{0, 3, 2.5, -1, 1}
	for seed := range 50 {
		rng := newRowRNG(int64(seed), 0)
		tok, _ := sampleToken(logits, sampling{Temperature: 1, TopK: 2}, rng)
		if tok != 1 && tok != 2 {
			t.Fatalf("top-k 2 sampled token %d", tok)
		}
		// p ∝ exp(logits): token 1 holds 0.52 of the mass, tokens 1 and 2
		// together 0.84; top-p 0.5 keeps token 1 only.
		tok, lp := sampleToken(logits, sampling{Temperature: 1, TopP: 0.5}, rng)
		if tok != 1 {
			t.Fatalf("top-p 0.5 sampled token %d", tok)
		}
		var z float64
		for _, l := range logits {
			z += math.Exp(float64(l))
		}
		if want := 3 - math.Log(z); math.Abs(float64(lp)-want) > 1e-6 {
			t.Fatalf("log-prob %g, want %g", lp, want)
		}
	}
	if tok, _ := sampleToken(logits, sampling{}, nil); tok != 1 {
		t.Errorf("greedy picked %d", tok)
	}
}

func TestGenerateStops(t *testing.T) {
	m := tinyModel(t, "qwen3", 9)
	ctx := context.Background()
	prompt := [][]int32{{3, 1, 4, 1, 5}}
	free, err := m.Generate(ctx, GenerateRequest{Prompts: prompt, MaxNewTokens: 8})
	if err != nil {
		t.Fatal(err)
	}
	if free[0].FinishReason != FinishLength || len(free[0].Tokens) != 8 {
		t.Fatalf("unconstrained generation: %+v", free[0])
	}
	toks := free[0].Tokens

	eos, err := m.Generate(ctx, GenerateRequest{Prompts: prompt, MaxNewTokens: 8, EOSTokenIDs: []int32{toks[2]}})
	if err != nil {
		t.Fatal(err)
	}
	first := slices.Index(toks, toks[2])
	if eos[0].FinishReason != FinishEOS || !slices.Equal(eos[0].Tokens, toks[:first+1]) {
		t.Errorf("EOS %d: got %+v from %v", toks[2], eos[0], toks)
	}

	// A decoder that spells tokens as <id>; stop at the text of tokens 3-4.
	decode := func(ids []int32) string {
		var b strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&b, "<%d>", id)
		}
		return b.String()
	}
	stop := decode(toks[3:5])
	got, err := m.Generate(ctx, GenerateRequest{Prompts: [][]int32{prompt[0], prompt[0]}, MaxNewTokens: 8,
		StopStrings: []string{stop}, Decode: decode})
	if err != nil {
		t.Fatal(err)
	}
	// The sequence finishes at the first token whose text completes the stop string.
	var want []int32
	for k := range toks {
		if strings.Contains(decode(toks[:k+1]), stop) {
			want = toks[:k+1]
			break
		}
	}
	for _, g := range got {
		if g.FinishReason != FinishStop || !slices.Equal(g.Tokens, want) {
			t.Errorf("stop %q: got %+v, want %v", stop, g, want)
		}
	}
	if _, err := m.Generate(ctx, GenerateRequest{Prompts: prompt, MaxNewTokens: 2, StopStrings: []string{"x"}}); err == nil {
		t.Error("stop strings without Decode accepted")
	}
	if _, err := m.Generate(ctx, GenerateRequest{Prompts: [][]int32{{64}}, MaxNewTokens: 2}); err == nil {
		t.Error("out-of-vocabulary prompt accepted")
	}
}

func TestTokenLogProbsMatchLogits(t *testing.T) {
	m := tinyModel(t, "llama", 4)
	ctx := context.Background()
	seqs := [][]int32{{1, 2, 3, 4, 5}, {7, 8}}
	lps, err := m.TokenLogProbs(ctx, seqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		logits, err := m.Logits(ctx, [][]int32{s}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if lps[i][0] != 0 || len(lps[i]) != len(s) {
			t.Fatalf("row %d: %v", i, lps[i])
		}
		for j := 1; j < len(s); j++ {
			row := logits.At(0, j-1)
			var z float64
			for _, l := range row {
				z += math.Exp(float64(l))
			}
			want := float64(row[s[j]]) - math.Log(z)
			if d := math.Abs(float64(lps[i][j]) - want); d > 1e-5 {
				t.Errorf("row %d token %d: %g, want %g", i, j, lps[i][j], want)
			}
		}
	}
}

func TestGenerateSplitsLargeRequests(t *testing.T) {
	ctx := context.Background()
	whole := tinyModel(t, "llama", 21)
	split, err := Init(whole.Config, 21, LoadOptions{Backend: "go", MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	prompts := [][]int32{{1}, {2, 3}, {4, 5, 6}, {7}, {8, 9}}
	req := GenerateRequest{Prompts: prompts, MaxNewTokens: 4, Temperature: 1, Seed: 3}
	a, err := whole.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := split.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if !slices.Equal(a[i].Tokens, b[i].Tokens) {
			t.Errorf("prompt %d: %v in one batch, %v split", i, a[i].Tokens, b[i].Tokens)
		}
	}
	la, _ := whole.TokenLogProbs(ctx, prompts, nil)
	lb, err := split.TokenLogProbs(ctx, prompts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if d := maxAbsDiff(t, la[i], lb[i]); d > 1e-5 {
			t.Errorf("prompt %d: log-probs differ by %g when split", i, d)
		}
	}
}

// rank orders tokens by logit, then id, and topK's partial selection keeps
// exactly the k first tokens of that ranking, ties included.
func TestTopKSelection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []float32{float32(math.Copysign(0, -1)), 0, -1e30, 1e30, float32(math.Inf(-1)), 3.5, -3.5, 1e-40, -1e-40}
	for trial := range 200 {
		n := 1 + rng.IntN(300)
		logits := make([]float32, n)
		for i := range logits {
			if rng.IntN(4) == 0 {
				logits[i] = values[rng.IntN(len(values))]
			} else {
				logits[i] = float32(rng.IntN(20) - 10) // many ties
			}
		}
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(i)
		}
		slices.SortFunc(ids, func(a, b int32) int { // larger logit first, then smaller id
			switch {
			case logits[a] > logits[b]:
				return -1
			case logits[a] < logits[b]:
				return 1
			}
			return int(a - b)
		})
		all := make([]rank, n)
		for i, v := range logits {
			all[i] = rankOf(v, i)
		}
		slices.Sort(all)
		for j, r := range all {
			if r.id() != ids[j] {
				t.Fatalf("trial %d: position %d ranks token %d, want %d", trial, j, r.id(), ids[j])
			}
		}
		k := 1 + rng.IntN(n)
		got := topK(logits, k)
		slices.Sort(got)
		if !slices.Equal(got, all[:k]) {
			t.Fatalf("trial %d (n=%d, k=%d): top-k %v, want %v", trial, n, k, got, all[:k])
		}
	}
}

// TestGenerateRowSettings checks that a prompt with its own RowSettings
// decodes in a batch exactly as it does alone with the same settings as
// the request's, and that a row's token bound, stop strings and
// cancellation end that row only.
//
// Mutations seen to fail it: seeding a row's stream with its place in the
// batch (newRowRNG(r.Seed, i)); ignoring RowSettings.MaxNewTokens; not
// polling Cancelled.
func TestGenerateRowSettings(t *testing.T) {
	m := tinyModel(t, "qwen2", 5)
	ctx := context.Background()
	prompts := [][]int32{{5, 6, 7}, {1, 2, 3, 4}, {42, 8}}
	settings := []RowSettings{
		{Temperature: 1, Seed: 11},
		{Temperature: 0.7, TopP: 0.9, Seed: 12},
		{Temperature: 1.3, TopK: 5, Seed: 13},
	}
	batched, err := m.Generate(ctx, GenerateRequest{Prompts: prompts, MaxNewTokens: 9, Rows: settings})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range settings {
		alone, err := m.Generate(ctx, GenerateRequest{Prompts: prompts[i : i+1], MaxNewTokens: 9,
			Temperature: r.Temperature, TopP: r.TopP, TopK: r.TopK, Seed: r.Seed})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(alone[0].Tokens, batched[i].Tokens) {
			t.Errorf("row %d: alone %v, in a batch with its own settings %v", i, alone[0].Tokens, batched[i].Tokens)
		}
	}

	// Row 0 stops after 3 tokens, row 1 is cancelled after its second
	// token, row 2 runs to the request's bound.
	steps := 0
	rows := []RowSettings{
		{Temperature: 1, Seed: 11, MaxNewTokens: 3},
		{Temperature: 1, Seed: 12, Cancelled: func() bool { return steps >= 2 }},
		{Temperature: 1, Seed: 13},
	}
	var streamed [3]int
	gens, err := m.Generate(ctx, GenerateRequest{Prompts: prompts, MaxNewTokens: 9, Rows: rows,
		OnToken: func(p int, _ int32) {
			streamed[p]++
			if p == 2 {
				steps++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if g := gens[0]; g.FinishReason != FinishLength || len(g.Tokens) != 3 {
		t.Errorf("row bound 3: %d tokens, finish %q", len(g.Tokens), g.FinishReason)
	}
	if g := gens[1]; g.FinishReason != FinishCancelled || len(g.Tokens) != 2 || streamed[1] != 2 {
		t.Errorf("cancelled after 2 steps: %d tokens (%d streamed), finish %q", len(g.Tokens), streamed[1], g.FinishReason)
	}
	if g := gens[2]; g.FinishReason != FinishLength || len(g.Tokens) != 9 {
		t.Errorf("row on the request's bound: %d tokens, finish %q", len(g.Tokens), g.FinishReason)
	}

	for _, bad := range []GenerateRequest{
		{Prompts: prompts, MaxNewTokens: 4, Rows: settings[:2]},
		{Prompts: prompts[:1], MaxNewTokens: 4, Rows: []RowSettings{{MaxNewTokens: 5}}},
		{Prompts: prompts[:1], MaxNewTokens: 4, Rows: []RowSettings{{TopP: 2}}},
		{Prompts: prompts[:1], MaxNewTokens: 4, Rows: []RowSettings{{StopStrings: []string{"x"}}}},
	} {
		if _, err := m.Generate(ctx, bad); err == nil {
			t.Errorf("accepted %+v", bad.Rows)
		}
	}
}
