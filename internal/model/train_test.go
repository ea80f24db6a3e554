package model

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// tinyConfig is a two-layer model small enough for fast CPU tests.
func tinyConfig(t *testing.T, modelType string) Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(`{"model_type": "` + modelType + `", "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64,
		"max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000, "tie_word_embeddings": true}`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func tinyModel(t *testing.T, modelType string, seed int64) *Model {
	t.Helper()
	m, err := Init(tinyConfig(t, modelType), seed, LoadOptions{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPPOTerms(t *testing.T) {
	backend, err := Backend("go")
	if err != nil {
		t.Fatal(err)
	}
	// Rows: ratio 1; ratio e^0.5 clipped at 1.28; ratio e^-0.5 with A>0
	// (not clipped: the pessimistic term is the unclipped one); ratio e^-0.5
	// with A<0 (clipped at 0.8).
	logp := []float32{-1, -0.5, -1.5, -1.5}
	old := []float32{-1, -1, -1, -1}
	adv := []float32{2, 1, 1, -1}
	ref := []float32{-0.7, -0.5, -1.5, -1}
	exec := graph.MustNewExec(backend, func(logp, old, ref, adv *graph.Node) []*graph.Node {
		g := logp.Graph()
		s := func(v float32) *graph.Node { return graph.Const(g, v) }
		terms := ppoTerms(logp, old, ref, adv, s(0.2), s(0.28), s(0), s(0.1), s(0))
		return []*graph.Node{terms.Loss, terms.Policy, terms.KL, terms.Clipped}
	})
	out, err := exec.Exec(logp, old, ref, adv)
	if err != nil {
		t.Fatal(err)
	}
	e := math.Exp
	k3 := func(d float64) float64 { return e(d) - d - 1 }
	wantPolicy := []float64{-2, -1.28, -e(-0.5), 0.8}
	wantKL := []float64{k3(0.3), 0, 0, k3(0.5)}
	wantClipped := []float64{0, 1, 0, 1}
	for i := range logp {
		policy := out[1].Value().([]float32)[i]
		kl := out[2].Value().([]float32)[i]
		loss := out[0].Value().([]float32)[i]
		clipped := out[3].Value().([]float32)[i]
		if math.Abs(float64(policy)-wantPolicy[i]) > 1e-6 {
			t.Errorf("token %d: policy term %g, want %g", i, policy, wantPolicy[i])
		}
		if math.Abs(float64(kl)-wantKL[i]) > 1e-6 {
			t.Errorf("token %d: k3 %g, want %g", i, kl, wantKL[i])
		}
		if want := wantPolicy[i] + 0.1*wantKL[i]; math.Abs(float64(loss)-want) > 1e-6 {
			t.Errorf("token %d: loss %g, want %g", i, loss, want)
		}
		if float64(clipped) != wantClipped[i] {
			t.Errorf("token %d: clipped %g, want %g", i, clipped, wantClipped[i])
		}
	}
}

// Dual clipping and the KL clamp, by hand: with A < 0 the PPO term is
// bounded by −c·A; k3 is bounded by the clamp; log-differences beyond ±20
// are clamped before exp.
func TestPPODualClipAndKLClamp(t *testing.T) {
	backend, err := Backend("go")
	if err != nil {
		t.Fatal(err)
	}
	// Rows: ratio e^1.5 with A = −1 (PPO term e^1.5 = 4.48, dual-clipped to
	// 3); ratio e^0.5 with A = −1 (1.65, below the bound); ratio e^1.5 with
	// A = +1 (clipped at −1.28, dual clip does not apply); ratio e^2 with
	// A = −2 (2e^2 = 14.8, bounded by 6); log-ratio 25 with A = −1 (ratio
	// e^20 after the ±20 clamp, bounded by 3).
	logp := []float32{-1, -1, -1, -1, -1}
	old := []float32{-2.5, -1.5, -2.5, -3, -26}
	adv := []float32{-1, -1, 1, -2, -1}
	// ref − logp: 3 (k3 = e^3 − 4 = 16.1, clamped to 10), 0.5, 0, −1
	// (k3 = e^−1 = 0.37), 25 (clamped to 20 first: e^20 − 21).
	ref := []float32{2, -0.5, -1, -2, 24}
	run := func(dualClip, klClamp float32) (policy, kl []float32) {
		exec := graph.MustNewExec(backend, func(logp, old, ref, adv *graph.Node) []*graph.Node {
			g := logp.Graph()
			s := func(v float32) *graph.Node { return graph.Const(g, v) }
			terms := ppoTerms(logp, old, ref, adv, s(0.2), s(0.28), s(dualClip), s(0.01), s(klClamp))
			return []*graph.Node{terms.Policy, terms.KL}
		})
		out, err := exec.Exec(logp, old, ref, adv)
		if err != nil {
			t.Fatal(err)
		}
		return out[0].Value().([]float32), out[1].Value().([]float32)
	}
	e := math.Exp
	k3 := func(d float64) float64 { return e(d) - d - 1 }
	check := func(what string, got []float32, want []float64) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
				t.Errorf("%s, token %d: %g, want %g", what, i, got[i], want[i])
			}
		}
	}
	policy, kl := run(3, 10)
	check("dual clip 3", policy, []float64{3, e(0.5), -1.28, 6, 3})
	check("KL clamp 10", kl, []float64{10, k3(0.5), 0, k3(-1), 10})
	policy, kl = run(0, 0)
	check("no dual clip", policy, []float64{e(1.5), e(0.5), -1.28, 2 * e(2), e(20)})
	check("no KL clamp", kl, []float64{k3(3), k3(0.5), 0, k3(-1), k3(20)})
}

// policyBatch builds a batch of variable-length sequences whose old
// log-probs are the current ones shifted, so the ratios differ from 1.
func policyBatch(t *testing.T, m *Model) PolicyBatch {
	t.Helper()
	seqs := [][]int32{{1, 2, 3, 4, 5, 6, 7}, {9, 8, 7}, {3, 3, 3, 3, 3}}
	logps, err := m.TokenLogProbs(context.Background(), seqs, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := PolicyBatch{Sequences: seqs}
	for i, s := range seqs {
		mask, adv, old, ref := make([]float32, len(s)), make([]float32, len(s)), make([]float32, len(s)), make([]float32, len(s))
		for j := range s {
			if j >= 2 {
				mask[j] = 1
			}
			adv[j] = float32(i) - 1
			old[j] = logps[i][j] + 0.3*float32(j%3-1)
			ref[j] = logps[i][j] - 0.2
		}
		b.LossMask, b.Advantages = append(b.LossMask, mask), append(b.Advantages, adv)
		b.OldLogProbs, b.RefLogProbs = append(b.OldLogProbs, old), append(b.RefLogProbs, ref)
	}
	return b
}

func TestPolicyStepLoss(t *testing.T) {
	lossCfg := PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.28, KLCoef: 0.01}
	for _, micro := range []int{0, 1} {
		m := tinyModel(t, "llama", 1)
		batch := policyBatch(t, m)
		logps, err := m.TokenLogProbs(context.Background(), batch.Sequences, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The expected token-mean loss, computed on the host.
		var sum, n float64
		for i := range batch.Sequences {
			for j := range batch.Sequences[i] {
				if batch.LossMask[i][j] == 0 || j == 0 {
					continue
				}
				lp, old, ref, a := float64(logps[i][j]), float64(batch.OldLogProbs[i][j]),
					float64(batch.RefLogProbs[i][j]), float64(batch.Advantages[i][j])
				ratio := math.Exp(lp - old)
				clipped := math.Min(math.Max(ratio, 0.8), 1.28)
				policy := math.Max(-ratio*a, -clipped*a)
				d := ref - lp
				sum += policy + 0.01*(math.Exp(d)-d-1)
				n++
			}
		}
		tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-3, MicroBatchSize: micro, MaxGradNorm: 1})
		if err != nil {
			t.Fatal(err)
		}
		stats, err := tr.PolicyStep(context.Background(), batch, lossCfg)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(stats.Loss-sum/n) > 1e-5 || stats.Tokens != int(n) {
			t.Errorf("micro-batch %d: loss %g over %d tokens, want %g over %g", micro, stats.Loss, stats.Tokens, sum/n, n)
		}
		if !(stats.GradNorm > 0) || !(stats.Entropy > 0) || stats.LR != 1e-3 {
			t.Errorf("stats %+v", stats)
		}
		after, err := m.TokenLogProbs(context.Background(), batch.Sequences, nil)
		if err != nil {
			t.Fatal(err)
		}
		if after[0][3] == logps[0][3] {
			t.Errorf("weights did not change")
		}
	}
}

// patternData is a predictable token stream a model learns in a few steps.
func patternData() [][]int32 {
	var seqs [][]int32
	for s := range 4 {
		seq := make([]int32, 24)
		for j := range seq {
			seq[j] = int32((s + 3*j) % 17)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestLMStepsReduceLoss(t *testing.T) {
	m := tinyModel(t, "qwen3", 2)
	tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-2, WarmupSteps: 2, Schedule: "cosine", TotalSteps: 40,
		MaxGradNorm: 1, WeightDecay: 0.01, MicroBatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	data := patternData()
	var first, last StepStats
	for step := range 15 {
		stats, err := tr.LMStep(context.Background(), data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = stats
		}
		last = stats
	}
	t.Logf("loss %.3f -> %.3f", first.Loss, last.Loss)
	if math.Abs(first.Loss-math.Log(64)) > 0.3 {
		t.Errorf("initial loss %g, expected about ln(64) = %g", first.Loss, math.Log(64))
	}
	if last.Loss > first.Loss*0.6 {
		t.Errorf("loss went from %g to %g", first.Loss, last.Loss)
	}
	if first.LR != 5e-3 {
		t.Errorf("warm-up LR %g, want 5e-3", first.LR)
	}
}

func TestLearningRateSchedules(t *testing.T) {
	m := tinyModel(t, "llama", 1)
	cases := []struct {
		cfg  OptimizerConfig
		step int
		want float64
	}{
		{OptimizerConfig{LR: 1, WarmupSteps: 4}, 0, 0.25},
		{OptimizerConfig{LR: 1, WarmupSteps: 4}, 10, 1},
		{OptimizerConfig{LR: 1, Schedule: "linear", TotalSteps: 10}, 5, 0.5},
		{OptimizerConfig{LR: 1, Schedule: "cosine", TotalSteps: 10}, 5, 0.5},
		{OptimizerConfig{LR: 1, Schedule: "cosine", WarmupSteps: 2, TotalSteps: 12}, 12, 0},
	}
	for _, c := range cases {
		tr, err := NewTrainer(m, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.LearningRate(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%+v step %d: LR %g, want %g", c.cfg, c.step, got, c.want)
		}
	}
	if _, err := NewTrainer(m, OptimizerConfig{LR: 1, Schedule: "step"}); err == nil {
		t.Error("unknown schedule accepted")
	}
}

func TestTrainerStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := OptimizerConfig{LR: 5e-3, WeightDecay: 0.1}
	data := patternData()
	ctx := context.Background()

	a := tinyModel(t, "qwen2", 3)
	ta, err := NewTrainer(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ta.LMStep(ctx, data, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(filepath.Join(dir, "model")); err != nil {
		t.Fatal(err)
	}
	if err := ta.SaveState(filepath.Join(dir, "optim")); err != nil {
		t.Fatal(err)
	}
	statsA, err := ta.LMStep(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}

	b, err := Load(filepath.Join(dir, "model"), LoadOptions{Backend: "go"})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := NewTrainer(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.LoadState(filepath.Join(dir, "optim")); err != nil {
		t.Fatal(err)
	}
	if tb.Step() != 1 {
		t.Fatalf("restored step %d, want 1", tb.Step())
	}
	statsB, err := tb.LMStep(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(statsA.Loss-statsB.Loss) > 1e-6 || math.Abs(statsA.GradNorm-statsB.GradNorm) > 1e-5 {
		t.Errorf("resumed step differs: %+v vs %+v", statsA, statsB)
	}
	for _, name := range []string{wEmbed, "model.layers.1.mlp.down_proj.weight"} {
		wa, _ := a.weightFloat32(name)
		wb, _ := b.weightFloat32(name)
		if d := maxAbsDiff(t, wa, wb); d > 1e-6 {
			t.Errorf("%s differs by %g after the resumed step", name, d)
		}
	}
}

func TestPolicyStepRejectsBadBatches(t *testing.T) {
	m := tinyModel(t, "llama", 1)
	tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	good := policyBatch(t, m)
	ctx := context.Background()
	cfg := PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.28, KLCoef: 0.01}
	cases := map[string]func(b *PolicyBatch){
		"short advantages": func(b *PolicyBatch) { b.Advantages[1] = b.Advantages[1][:1] },
		"missing rows":     func(b *PolicyBatch) { b.OldLogProbs = b.OldLogProbs[:1] },
		"no reference":     func(b *PolicyBatch) { b.RefLogProbs = nil },
		"empty mask": func(b *PolicyBatch) {
			for i := range b.LossMask {
				b.LossMask[i] = make([]float32, len(b.LossMask[i]))
			}
		},
		"token out of vocabulary": func(b *PolicyBatch) { b.Sequences[0] = append([]int32{64}, b.Sequences[0][1:]...) },
	}
	for name, spoil := range cases {
		b := policyBatch(t, m)
		spoil(&b)
		if _, err := tr.PolicyStep(ctx, b, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := tr.PolicyStep(ctx, good, cfg); err != nil {
		t.Errorf("a good batch after rejected ones: %v", err)
	}
	if tr.Step() != 1 {
		t.Errorf("%d optimizer steps, want 1", tr.Step())
	}
}

// Rollouts sampled at temperature T record log-probs of softmax(logits/T)
// (greedy ones of softmax(logits)), TokenLogProbs reproduces them given T,
// and a PPO step told each sequence's temperature starts from ratio 1: the
// policy term of its first step is exactly −mean(A). Scored at T = 1 instead,
// the ratios are not 1.
func TestTemperatureLogProbs(t *testing.T) {
	ctx := context.Background()
	prompts := [][]int32{{1, 2, 3}, {4, 5, 6, 7, 8}}
	const temp = 0.8
	m := tinyModel(t, "qwen2", 5)
	gens, err := m.Generate(ctx, GenerateRequest{Prompts: prompts, MaxNewTokens: 12, Temperature: temp, TopP: 0.9, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	greedy, err := m.Generate(ctx, GenerateRequest{Prompts: prompts[:1], MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	// Host reference: log_softmax(logits/T) of the finished sequence.
	hostLogProb := func(seq []int32, pos int, temp float64) float64 {
		logits, err := m.Logits(ctx, [][]int32{seq}, nil)
		if err != nil {
			t.Fatal(err)
		}
		row := logits.At(0, pos-1)
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) / temp)
		}
		return float64(row[seq[pos]])/temp - math.Log(z)
	}
	batch := PolicyBatch{}
	for i, g := range gens {
		seq := append(append([]int32(nil), prompts[i]...), g.Tokens...)
		scored, err := m.TokenLogProbs(ctx, [][]int32{seq}, []float32{temp})
		if err != nil {
			t.Fatal(err)
		}
		mask, adv, old := make([]float32, len(seq)), make([]float32, len(seq)), make([]float32, len(seq))
		for j, lp := range g.LogProbs {
			pos := len(prompts[i]) + j
			if want := hostLogProb(seq, pos, temp); math.Abs(float64(lp)-want) > 1e-4 {
				t.Errorf("row %d token %d: sampled log-prob %g, log_softmax(logits/%g) %g", i, j, lp, temp, want)
			}
			if d := math.Abs(float64(lp - scored[0][pos])); d > 1e-4 {
				t.Errorf("row %d token %d: sampled log-prob %g, scored at T=%g %g", i, j, lp, temp, scored[0][pos])
			}
			mask[pos], adv[pos], old[pos] = 1, 1, lp
		}
		batch.Sequences = append(batch.Sequences, seq)
		batch.LossMask, batch.Advantages, batch.OldLogProbs = append(batch.LossMask, mask), append(batch.Advantages, adv), append(batch.OldLogProbs, old)
		batch.Temperatures = append(batch.Temperatures, temp)
	}
	gseq := append(append([]int32(nil), prompts[0]...), greedy[0].Tokens...)
	for j, lp := range greedy[0].LogProbs {
		if want := hostLogProb(gseq, len(prompts[0])+j, 1); math.Abs(float64(lp)-want) > 1e-4 {
			t.Errorf("greedy token %d: log-prob %g, log_softmax(logits) %g", j, lp, want)
		}
	}

	lossCfg := PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.28, DualClip: 3}
	step := func(temps []float32) StepStats {
		m := tinyModel(t, "qwen2", 5) // the weights that sampled the batch
		defer m.Close()
		tr, err := NewTrainer(m, OptimizerConfig{LR: 1e-3})
		if err != nil {
			t.Fatal(err)
		}
		b := batch
		b.Temperatures = temps
		stats, err := tr.PolicyStep(ctx, b, lossCfg)
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	if st := step(batch.Temperatures); math.Abs(st.PolicyLoss+1) > 1e-5 || st.ClipFraction != 0 {
		t.Errorf("at the sampling temperature: policy loss %g (want −1: every ratio 1), clip fraction %g", st.PolicyLoss, st.ClipFraction)
	}
	if st := step(nil); math.Abs(st.PolicyLoss+1) < 1e-3 {
		t.Errorf("at T = 1: policy loss %g; ratios against the T = 0.8 log-probs should not all be 1", st.PolicyLoss)
	}
}

// TestZeroGradientStepIdentical trains two copies of a model: one real
// step, then N steps on batches whose advantages are all 0 (KL off) — run
// in full on one copy, skipped with ZeroGradientStep on the other. The
// weights and the optimizer state must come out bit for bit the same, and
// must have moved (momentum and weight decay act in those steps too).
func TestZeroGradientStepIdentical(t *testing.T) {
	ctx := context.Background()
	cfg := OptimizerConfig{LR: 5e-3, WeightDecay: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MaxGradNorm: 1, WarmupSteps: 2}
	lossCfg := PolicyLossConfig{ClipLow: 0.2, ClipHigh: 0.28, DualClip: 3}
	full, skip := tinyModel(t, "qwen2", 4), tinyModel(t, "qwen2", 4)
	tf, err := NewTrainer(full, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := NewTrainer(skip, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batch := policyBatch(t, full)
	batch.RefLogProbs = nil
	for _, tr := range []*Trainer{tf, ts} {
		if _, err := tr.PolicyStep(ctx, batch, lossCfg); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := full.weightFloat32(wEmbed)
	zero := batch
	zero.Advantages = nil
	for _, a := range batch.Advantages {
		zero.Advantages = append(zero.Advantages, make([]float32, len(a)))
	}
	for range 3 {
		fs, err := tf.PolicyStep(ctx, zero, lossCfg)
		if err != nil {
			t.Fatal(err)
		}
		if fs.GradNorm != 0 {
			t.Fatalf("a full step with zero advantages has gradient norm %g; the skip would not be exact", fs.GradNorm)
		}
		ss, err := ts.ZeroGradientStep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ss.Skipped != 1 || ss.LR != fs.LR || ss.Tokens != 0 {
			t.Errorf("skipped step stats %+v, full %+v", ss, fs)
		}
	}
	if tf.Step() != ts.Step() {
		t.Errorf("steps %d and %d", tf.Step(), ts.Step())
	}
	for _, s := range full.specs {
		wf, _ := full.weightFloat32(s.name)
		ws, _ := skip.weightFloat32(s.name)
		if !slices.Equal(wf, ws) {
			t.Errorf("%s: weights differ by up to %g after skipped steps", s.name, maxAbsDiff(t, wf, ws))
		}
	}
	after, _ := full.weightFloat32(wEmbed)
	// One more real step on both: equal moments give equal weights again.
	for _, tr := range []*Trainer{tf, ts} {
		if _, err := tr.PolicyStep(ctx, batch, lossCfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range full.specs {
		wf, _ := full.weightFloat32(s.name)
		ws, _ := skip.weightFloat32(s.name)
		if !slices.Equal(wf, ws) {
			t.Errorf("%s: weights differ by up to %g after a real step following the skipped ones", s.name, maxAbsDiff(t, wf, ws))
		}
	}
	if slices.Equal(before, after) {
		t.Error("steps with zero advantages left the weights unchanged; momentum and weight decay should move them")
	}
}
