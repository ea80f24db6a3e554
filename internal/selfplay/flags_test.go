package selfplay

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// Every key is a flag, nested ones (optim.lora.rank) too. Mutation seen to
// fail: fieldByPath looking one level deep ("unknown config key").
func TestConfigFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	apply := ConfigFlags(fs)
	err := fs.Parse([]string{"-game.batch_size", "16", "-proposer.temperature=0.5", "-game.combined_update",
		"true", "-optim.lr", "3e-6", "-run.out", "runs/x: y", "-game.batch_size=32",
		"-optim.lora.rank", "8", "-optim.lora.targets", "q,v", "-optim.lora.save_merged", "true"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if err := apply(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Game.BatchSize != 32 || cfg.Proposer.Temperature != 0.5 || !cfg.Game.CombinedUpdate ||
		cfg.Optim.LR != 3e-6 || cfg.Run.Out != "runs/x: y" ||
		cfg.Optim.LoRA.Rank != 8 || cfg.Optim.LoRA.Targets != "q,v" || !cfg.Optim.LoRA.SaveMerged {
		t.Fatalf("flags not applied: %+v %+v %+v", cfg.Game, cfg.Proposer, cfg.Optim)
	}

	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if !strings.Contains(help.String(), "-verify.noise_blocks") || !strings.Contains(help.String(), "SSP: 4") ||
		!strings.Contains(help.String(), "-optim.lora.rank") {
		t.Fatalf("help lacks the knobs:\n%s", help.String())
	}
}

func TestSetConfigValueErrors(t *testing.T) {
	cfg := DefaultConfig()
	for _, tc := range []struct{ path, value, want string }{
		{"game.batch_size", "many", "game.batch_size"},
		{"game.nope", "1", "unknown config key"},
		{"batch_size", "1", "section.key"},
		{"optim.lora", "8", "is a section"},
		{"optim.lora.rnak", "8", "unknown config key"},
		{"optim.lora.rank", "eight", "optim.lora.rank"},
	} {
		if err := SetConfigValue(&cfg, tc.path, tc.value); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetConfigValue(%q, %q) = %v, want %q", tc.path, tc.value, err, tc.want)
		}
	}
}
