package builtin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/bootstrap"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

// TestEmbeddedModelMatchesDefaults: the embedded checkpoint was bootstrapped
// with the agent settings the built-in self-play and eval runs use, on the
// built-in world; otherwise it would be run with prompts it never saw.
func TestEmbeddedModelMatchesDefaults(t *testing.T) {
	data, err := embeddedModel.ReadFile("model/bootstrap.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep bootstrap.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	cfg := selfplay.DefaultConfig()
	TrainConfig(&cfg)
	o := rep.Options
	type settings struct {
		Prompts                                                      string
		TopK, MaxInformationChars, NoiseBlocks, MaxPromptTokens, RAG int
		MaxTurns, MaxTokensPerTurn, MaxResponseTokens                int
	}
	bootstrapped := settings{o.Prompts, o.TopK, o.MaxInformationChars, o.NoiseBlocks, o.MaxPromptTokens, o.MaxPromptTokens,
		o.MaxTurns, o.MaxTokensPerTurn, o.MaxResponseTokens}
	used := settings{cfg.Game.Prompts, cfg.Agent.TopK, cfg.Agent.MaxInformationChars, cfg.Verify.NoiseBlocks, cfg.Agent.MaxPromptTokens,
		cfg.Verify.PromptTokens(cfg.Agent), cfg.Agent.MaxTurns, cfg.Agent.MaxTokensPerTurn, cfg.Agent.MaxResponseTokens}
	if bootstrapped != used {
		t.Errorf("embedded model bootstrapped with %+v; the built-in config uses %+v", bootstrapped, used)
	}
	cfg.Run.EvalData = "benchmark.jsonl" // `ssp train` fills in the built-in world's
	if err := cfg.Validate(); err != nil {
		t.Errorf("built-in config: %v", err)
	}
	// The default run validates before its first step and after its last.
	if cfg.Run.EvalEvery != cfg.Run.Steps || !cfg.Run.EvalFirst {
		t.Errorf("built-in run: run.eval_every %d, run.eval_first %v over %d steps", cfg.Run.EvalEvery, cfg.Run.EvalFirst, cfg.Run.Steps)
	}
}

func TestPrepare(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the default world and index")
	}
	t.Setenv("GOMLX_BACKEND", "go")
	cache := t.TempDir()
	p, err := Prepare(context.Background(), cache, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.Seeds, p.Benchmark, p.Corpus, p.TrainQA, filepath.Join(p.Model, "config.json"), filepath.Join(p.Model, "tokenizer.json")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	tok, err := tokenizer.Load(p.Model)
	if err != nil {
		t.Fatal(err)
	}
	text := "<search> Who wrote it? </search>"
	ids := tok.Encode(text)
	search, _ := tok.TokenID("<search>")
	if tok.Decode(ids) != text || len(ids) > 12 || ids[0] != search {
		t.Errorf("world tokenizer: %v → %q", ids, tok.Decode(ids))
	}
	m, err := model.Load(p.Model, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	ix, err := index.Open(p.Index)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	first, err := os.ReadFile(p.Benchmark)
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		Question string   `json:"question"`
		Answers  []string `json:"golden_answers"`
		Chain    []struct{ Subject, Object string }
	}
	if err := json.Unmarshal([]byte(strings.SplitN(string(first), "\n", 2)[0]), &q); err != nil {
		t.Fatal(err)
	}
	hits, err := ix.Search(context.Background(), []string{q.Chain[0].Subject}, 2)
	if err != nil || len(hits[0]) == 0 || !strings.Contains(hits[0][0].Document.Contents, q.Chain[0].Subject) {
		t.Errorf("search for %q: %v %v", q.Chain[0].Subject, hits, err)
	}
	// A second call reuses the entry.
	if p2, err := Prepare(context.Background(), cache, t.Logf); err != nil || p2 != p {
		t.Errorf("second Prepare: %v %v", p2, err)
	}
}
