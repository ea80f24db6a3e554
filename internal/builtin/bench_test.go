package builtin

import (
	"context"
	"testing"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/agent/agenttest"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

// BenchmarkSolverRollouts runs the embedded model's solver rollouts as the
// self-play solver phase does — 8 benchmark questions × 4 rollouts, the
// built-in agent bounds, sampling — once through a session (repeated
// prompts prefilled once, key/value caches kept between turns) and once
// re-encoding every turn's prompt, side by side.
//
//	go test ./internal/builtin -run '^$' -bench SolverRollouts -benchtime 2x
func BenchmarkSolverRollouts(b *testing.B) {
	b.Setenv("GOMLX_BACKEND", "go")
	ctx := context.Background()
	p, err := Prepare(ctx, b.TempDir(), b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokenizer.Load(p.Model)
	if err != nil {
		b.Fatal(err)
	}
	ix, err := index.Open(p.Index)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	m, err := model.Load(p.Model, model.LoadOptions{Backend: "go"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	examples, err := dataset.ReadJSONL(ctx, p.Benchmark)
	if err != nil {
		b.Fatal(err)
	}
	var prompts [][]int32
	for _, ex := range examples[:8] {
		system, user := selfplay.SolverMessages(ex.Question)
		text, err := tok.ApplyChatTemplate([]tokenizer.Message{{Role: "system", Content: system}, {Role: "user", Content: user}}, true)
		if err != nil {
			b.Fatal(err)
		}
		for range 4 {
			prompts = append(prompts, tok.Encode(text))
		}
	}
	cfg := selfplay.DefaultConfig()
	TrainConfig(&cfg)
	acfg := agent.Config{FinalTag: "answer", Search: true, MaxTurns: cfg.Agent.MaxTurns,
		MaxTokensPerTurn: cfg.Agent.MaxTokensPerTurn, MaxResponseTokens: cfg.Agent.MaxResponseTokens,
		TopK: cfg.Agent.TopK, MaxInformationChars: cfg.Agent.MaxInformationChars,
		Temperature: 1, Seed: 1, EOSTokenIDs: tok.EOSTokenIDs()}
	for _, variant := range []struct {
		name string
		gen  agent.Generator
	}{{"kept-caches", m}, {"re-encoded", agenttest.WithoutSessions{Model: m}}} {
		b.Run(variant.name, func(b *testing.B) {
			generated, turns := 0, 0
			for b.Loop() {
				trajs, err := agent.Run(ctx, variant.gen, tok, ix, prompts, acfg)
				if err != nil {
					b.Fatal(err)
				}
				for _, t := range trajs {
					generated += t.GeneratedTokens
					turns += t.Turns
				}
			}
			b.ReportMetric(float64(generated)/b.Elapsed().Seconds(), "gen-tokens/s")
			b.ReportMetric(float64(turns)/float64(b.N*len(prompts)), "turns/rollout")
		})
	}
}
