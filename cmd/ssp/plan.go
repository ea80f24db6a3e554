package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ssp-project/ssp/internal/builtin"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/selfplay"
)

// `ssp train --plan` prints the memory plan of a run (internal/model
// memplan.go) from config.json alone, and, given the device's memory, the
// cheapest settings that make the run fit.

// planFor computes the plan of cfg: the architecture from run.model's
// config.json (the embedded model's without run.model), the adapters from
// optim.lora or run.adapter's adapter_config.json.
func planFor(cfg selfplay.Config) (model.MemoryPlan, model.MemorySettings, error) {
	var mc model.Config
	var err error
	if cfg.Run.Model == "" {
		data, rerr := builtin.ModelConfig()
		if rerr != nil {
			return model.MemoryPlan{}, model.MemorySettings{}, rerr
		}
		mc, err = model.ParseConfig(data)
	} else {
		mc, err = model.LoadConfig(filepath.Join(cfg.Run.Model, "config.json"))
	}
	if err != nil {
		return model.MemoryPlan{}, model.MemorySettings{}, err
	}
	var lora *model.LoRAConfig
	if lc, ok := cfg.LoRA(); ok {
		lora = &lc
	}
	if cfg.Run.Adapter != "" {
		lc, err := model.ReadAdapterConfig(cfg.Run.Adapter)
		if err != nil {
			return model.MemoryPlan{}, model.MemorySettings{}, err
		}
		lora = &lc
	}
	s := cfg.MemorySettings(mc, lora)
	p, err := model.PlanMemory(s)
	return p, s, err
}

// planChange is one change of settings the fit search may make.
type planChange struct {
	key string // the config key it sets
	// phase is the part of the plan it shrinks: the state, a training step
	// or the rollouts.
	phase string
	// apply changes cfg and reports whether it did anything.
	apply func(cfg *selfplay.Config) bool
	// cost says what the change costs, for the user.
	cost string
}

// planChanges are the changes the fit search tries, cheapest first: those
// that leave the results as they are, then those that change numerics,
// then what is trained, then the game itself.
var planChanges = []planChange{
	{"optim.activation_checkpointing", model.PhaseTrain, func(c *selfplay.Config) bool {
		was := c.Optim.ActivationCheckpointing
		c.Optim.ActivationCheckpointing = true
		return !was
	}, "about one more forward pass per step (+1/3 compute); same results"},
	{"optim.logprob_chunk_tokens", model.PhaseTrain, func(c *selfplay.Config) bool {
		if c.Optim.LogProbChunkTokens == 0 || c.Optim.LogProbChunkTokens > 128 {
			c.Optim.LogProbChunkTokens = 128
			return true
		}
		return false
	}, "smaller LM-head chunks; same results"},
	{"optim.micro_batch_size", model.PhaseTrain, func(c *selfplay.Config) bool {
		if c.Optim.MicroBatchSize > 1 {
			c.Optim.MicroBatchSize /= 2
			return true
		}
		return false
	}, "fewer sequences per forward/backward pass (less parallel work); same results"},
	{"run.frozen_dtype", model.PhaseState, func(c *selfplay.Config) bool {
		if c.Run.FrozenDType == "bfloat16" || !(c.UsesLoRA() || c.Optim.KLCoef > 0) {
			return false
		}
		c.Run.FrozenDType = "bfloat16"
		return true
	}, "frozen weights (LoRA base, KL reference) rounded to bfloat16"},
	{"run.compute_dtype", model.PhaseTrain, func(c *selfplay.Config) bool {
		if c.Run.ComputeDType == "bfloat16" {
			return false
		}
		c.Run.ComputeDType = "bfloat16"
		return true
	}, "mixed precision: bfloat16 matmuls and activations"},
	{"optim.lora.rank", model.PhaseState, func(c *selfplay.Config) bool {
		if c.UsesLoRA() {
			return false
		}
		c.Optim.LoRA.Rank = 64
		c.Optim.LoRA.Alpha = 128
		return true
	}, "train rank-64 adapters instead of every weight"},
	{"game.batch_size", model.PhaseRollout, func(c *selfplay.Config) bool {
		if c.Game.BatchSize > 1 {
			c.Game.BatchSize /= 2
			return true
		}
		return false
	}, "fewer questions per step (fewer rollouts whose KV caches are held at once)"},
}

// planFit is what the fit search found.
type planFit struct {
	fits    bool
	plan    model.MemoryPlan
	changes []string // "key value", in the order applied
	costs   []string
}

// phaseBytes is what a run needs while in phase: the state, plus the
// phase's own terms for a training step or rollouts.
func phaseBytes(p model.MemoryPlan, phase string) float64 {
	switch phase {
	case model.PhaseTrain:
		return p.State + p.Train
	case model.PhaseRollout:
		return p.State + p.Rollout
	}
	return p.State
}

// fitPlan applies planChanges in order, each as long as it shrinks its
// phase and that phase does not fit yet, until the plan fits in device
// bytes. withLoRA allows switching full fine-tuning to LoRA.
func fitPlan(cfg selfplay.Config, device float64, withLoRA bool) (planFit, error) {
	plan, _, err := planFor(cfg)
	if err != nil {
		return planFit{}, err
	}
	fit := planFit{plan: plan, fits: plan.Total <= device}
	applied := map[string]bool{}
	for _, ch := range planChanges {
		if ch.key == "optim.lora.rank" && !withLoRA {
			continue
		}
		for !fit.fits && (ch.phase == model.PhaseState || phaseBytes(fit.plan, ch.phase) > device) {
			next := cfg
			if !ch.apply(&next) {
				break
			}
			p, _, err := planFor(next)
			if err != nil {
				return planFit{}, err
			}
			if phaseBytes(p, ch.phase) >= phaseBytes(fit.plan, ch.phase) || p.Total > fit.plan.Total {
				break
			}
			cfg, fit.plan, fit.fits = next, p, p.Total <= device
			if !applied[ch.key] {
				applied[ch.key] = true
				fit.costs = append(fit.costs, ch.key+": "+ch.cost)
			}
		}
	}
	for _, ch := range planChanges {
		if applied[ch.key] {
			fit.changes = append(fit.changes, "--"+ch.key+" "+configValue(cfg, ch.key))
			if ch.key == "optim.lora.rank" {
				fit.changes = append(fit.changes, "--optim.lora.alpha "+configValue(cfg, "optim.lora.alpha"))
			}
		}
	}
	return fit, nil
}

// configValue is the value of a key in cfg, as a flag takes it.
func configValue(cfg selfplay.Config, key string) string {
	switch key {
	case "optim.activation_checkpointing":
		return fmt.Sprint(cfg.Optim.ActivationCheckpointing)
	case "optim.logprob_chunk_tokens":
		return fmt.Sprint(cfg.Optim.LogProbChunkTokens)
	case "optim.micro_batch_size":
		return fmt.Sprint(cfg.Optim.MicroBatchSize)
	case "run.frozen_dtype":
		return cfg.Run.FrozenDType
	case "run.compute_dtype":
		return cfg.Run.ComputeDType
	case "optim.lora.rank":
		return fmt.Sprint(cfg.Optim.LoRA.Rank)
	case "optim.lora.alpha":
		return fmt.Sprint(cfg.Optim.LoRA.Alpha)
	case "game.batch_size":
		return fmt.Sprint(cfg.Game.BatchSize)
	}
	return "?"
}

// paramCount formats a number of parameters.
func paramCount(n int) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
	return fmt.Sprint(n)
}

// gb formats bytes in decimal gigabytes (GPU memory is sold in GB).
func gb(b float64) string {
	switch {
	case b == 0:
		return "0"
	case b < 1e6:
		return fmt.Sprintf("%.2f MB", b/1e6)
	case b < 1e9:
		return fmt.Sprintf("%.1f MB", b/1e6)
	}
	return fmt.Sprintf("%.1f GB", b/1e9)
}

// printPlan writes the plan of cfg and, with device > 0, whether it fits
// and the cheapest change that makes it fit.
func printPlan(w io.Writer, cfg selfplay.Config, device float64) error {
	plan, s, err := planFor(cfg)
	if err != nil {
		return err
	}
	c := s.Config
	name := cfg.Run.Model
	if name == "" {
		name = "the built-in model"
	}
	what := "full fine-tuning"
	if s.LoRA != nil {
		what = fmt.Sprintf("LoRA r %d on %s", s.LoRA.Rank, strings.Join(s.LoRA.Targets, ","))
	}
	fmt.Fprintf(w, "memory plan of %s: %s (hidden %d, %d layers, %d heads, %d KV heads, vocabulary %d), %s parameters, %s, %s trained\n",
		name, c.ModelType, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.VocabSize,
		paramCount(plan.Parameters), what, paramCount(plan.Trained))
	fmt.Fprintf(w, "settings: micro-batch %d × %d tokens, compute %s, frozen weights %s, activation checkpointing %v, log-prob chunk %d, KL reference %v, rollouts %d sequences × %d slots\n",
		s.MicroBatch, s.SeqLen, s.ComputeDType, s.FrozenDType, s.ActivationCheckpointing, s.LogProbChunk, s.KLReference,
		s.RolloutSequences, s.RolloutSlots)
	fmt.Fprintln(w, "(GB = 10⁹ bytes; no weights were loaded)")
	for _, phase := range []struct{ name, title string }{
		{model.PhaseState, "held for the whole run"},
		{model.PhaseTrain, "training step, one micro-batch"},
		{model.PhaseRollout, "rollouts"},
	} {
		fmt.Fprintf(w, "\n%s:\n", phase.title)
		for _, t := range plan.Terms {
			if t.Phase == phase.name {
				fmt.Fprintf(w, "  %-38s %10s   %s\n", t.Name, gb(t.Bytes), t.How)
			}
		}
	}
	fmt.Fprintf(w, "\ntotal: %s held + the larger of training %s and rollouts %s = %s\n",
		gb(plan.State), gb(plan.Train), gb(plan.Rollout), gb(plan.Total))
	if device <= 0 {
		return nil
	}
	if plan.Total <= device {
		fmt.Fprintf(w, "device: %s: fits, %s free\n", gb(device), gb(device-plan.Total))
		return nil
	}
	fmt.Fprintf(w, "device: %s: does not fit (%s over)\n", gb(device), gb(plan.Total-device))
	fit, err := fitPlan(cfg, device, false)
	if err != nil {
		return err
	}
	if !fit.fits && !cfg.UsesLoRA() {
		// Full fine-tuning does not fit with any setting: say what its
		// best plan lacks, what 8-bit moments would change, then try LoRA.
		eightBit := fit.plan.Total - 6*float64(fit.plan.Trained)
		fmt.Fprintf(w, "full fine-tuning does not fit with any setting tried: at best %s (%s)\n", gb(fit.plan.Total), strings.Join(fit.changes, " "))
		verdict := "would not fit either"
		if eightBit <= device {
			verdict = "would fit"
		}
		fmt.Fprintf(w, "  with 8-bit AdamW moments (2 instead of 8 bytes per parameter) it would need %s and %s; ssp does not implement 8-bit AdamW\n", gb(eightBit), verdict)
		if fit, err = fitPlan(cfg, device, true); err != nil {
			return err
		}
	}
	if fit.fits {
		fmt.Fprintf(w, "cheapest change that fits (%s, %s free): %s\n", gb(fit.plan.Total), gb(device-fit.plan.Total), strings.Join(fit.changes, " "))
		for _, c := range fit.costs {
			fmt.Fprintf(w, "  %s\n", c)
		}
		return nil
	}
	fmt.Fprintf(w, "no change tried makes it fit: with %s the plan is still %s (state %s); shorten agent.max_prompt_tokens + agent.max_response_tokens\n",
		strings.Join(fit.changes, " "), gb(fit.plan.Total), gb(fit.plan.State))
	return nil
}

// runPlan is `ssp train --plan`.
func runPlan(cfg selfplay.Config, gpuMemory string) error {
	device := 0.0
	if gpuMemory != "" {
		b, err := parseByteSize(gpuMemory)
		if err != nil {
			return fmt.Errorf("%w: --gpu-memory %v", errUsage, err)
		}
		device = float64(b)
	}
	return printPlan(os.Stdout, cfg, device)
}
