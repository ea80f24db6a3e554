package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/ssp-project/ssp/internal/bootstrap"
	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/world"
)

func init() {
	register(command{name: "world gen", summary: "generate a fictional world: corpus, self-play seeds, train QA, held-out benchmark", run: runWorldGen})
	register(command{name: "world bootstrap", summary: "train a base policy from scratch on a generated world", run: runWorldBootstrap})
}

func runWorldGen(ctx context.Context, args []string) error {
	fs := newFlags("world gen", "--out DIR [--seed S] [--size "+strings.Join(world.SizeNames, "|")+"]")
	out := fs.String("out", "", "directory to write corpus.jsonl, seeds.jsonl, train_qa.jsonl, benchmark.jsonl and world.json into")
	seed := fs.Uint64("seed", 1, "random seed; the same seed and size give the same files")
	size := fs.String("size", "small", "world size: "+sizeHelp())
	force := fs.Bool("force", false, "replace --out even when it is a directory that ssp did not write (never a file)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	preset, ok := world.Sizes[*size]
	if !ok {
		return fmt.Errorf("%w: --size %q: want one of %s", errUsage, *size, strings.Join(world.SizeNames, ", "))
	}
	outOpts := outdir.Options{Force: *force, ForceFlag: "--force"}
	if err := outdir.Check(*out, outdir.World, outOpts); err != nil {
		return err
	}
	g, err := world.Generate(*seed, preset)
	if err != nil {
		return err
	}
	var info world.Info
	err = outdir.Write(*out, outdir.World, outOpts, func(tmp string) error {
		var err error
		info, err = g.Write(tmp)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "world %q (seed %d) in %s: %d passages, %d seeds, %d train QA, benchmark by hops %v\n",
		info.Size, info.Seed, *out, info.Passages, info.Seeds, info.TrainQA, info.Benchmark)
	return nil
}

func sizeHelp() string {
	var parts []string
	for _, n := range world.SizeNames {
		s := world.Sizes[n]
		parts = append(parts, fmt.Sprintf("%s (%d people, %d works)", n, s.People, s.Works))
	}
	return strings.Join(parts, ", ")
}

func runWorldBootstrap(ctx context.Context, args []string) error {
	d := bootstrap.DefaultOptions()
	fs := newFlags("world bootstrap", "--world DIR --out DIR [flags]")
	o := d
	fs.StringVar(&o.World, "world", "", "world directory written by ssp world gen")
	fs.StringVar(&o.Index, "index", "", "BM25 index of the world's corpus (built on the fly when empty)")
	fs.StringVar(&o.Out, "out", "", "model directory to write (HF layout with tokenizer files and bootstrap.json)")
	fs.BoolVar(&o.Force, "force", false, "replace --out even when it is a directory that ssp did not write (never a file)")
	fs.StringVar(&o.Init, "init", "", "continue from this checkpoint (its tokenizer and weights) instead of training from scratch; the shape flags are ignored")
	fs.Int64Var(&o.Seed, "seed", d.Seed, "random seed (initialisation, batches, episodes, the worlds of the copy drills: give a continuation another seed for new drills)")
	fs.StringVar(&o.Backend, "backend", "", backendHelp)
	fs.IntVar(&o.VocabSize, "vocab-size", d.VocabSize, "tokenizer vocabulary size (256 bytes + merges + protocol tokens)")
	fs.IntVar(&o.Hidden, "hidden", d.Hidden, "model hidden size")
	fs.IntVar(&o.Layers, "layers", d.Layers, "decoder layers")
	fs.IntVar(&o.Heads, "heads", d.Heads, "attention heads")
	fs.IntVar(&o.KVHeads, "kv-heads", d.KVHeads, "key/value heads (grouped-query attention)")
	fs.IntVar(&o.Intermediate, "intermediate", d.Intermediate, "MLP intermediate size")
	fs.IntVar(&o.LMSteps, "lm-steps", d.LMSteps, "language-modelling steps on the corpus")
	fs.IntVar(&o.CopySteps, "copy-steps", d.CopySteps, "steps on copy drills (short solver episodes whose results are cut to a few sentences) before the protocol episodes")
	fs.IntVar(&o.CopyPackLen, "copy-pack-len", d.CopyPackLen, "tokens per packed row of copy drills")
	fs.IntVar(&o.ProtocolSteps, "protocol-steps", d.ProtocolSteps, "warm-up steps on scripted protocol episodes")
	fs.IntVar(&o.BatchSize, "batch-size", d.BatchSize, "sequences per step")
	fs.IntVar(&o.SeqLen, "seq-len", d.SeqLen, "tokens per language-modelling sequence")
	fs.IntVar(&o.PackLen, "pack-len", d.PackLen, "tokens per packed row of protocol episodes (episodes are laid end to end, not padded)")
	fs.IntVar(&o.MaxHops, "max-hops", d.MaxHops, "longest question chain in the protocol episodes (1-4)")
	fs.Float64Var(&o.ContextWeight, "context-weight", d.ContextWeight, "loss weight of the prompt and inserted results in protocol episodes (the model's own turns weigh 1)")
	roles := fs.String("protocol-roles", "solver,proposer,rag", "roles whose episodes the protocol warm-up trains on, comma-separated, of solver, proposer and rag (proposer,rag keeps a solver taught by copy drills as it is)")
	fs.Float64Var(&o.RAGDecoyShare, "rag-decoy-share", d.RAGDecoyShare, "share of RAG-check episodes that also show the page of another entity of the answer's kind, half of them without the answer's own page (0-1; teaches the check to read the question instead of naming the page of the right kind)")
	fs.Float64Var(&o.DrillShare, "protocol-drill-share", d.DrillShare, "share of protocol steps that train on a batch of copy drills instead (0-1; keeps the copying of a drilled base while it learns the other roles)")
	fs.IntVar(&o.ProbeEvery, "probe-every", d.ProbeEvery, "run the greedy solver and proposer on held-aside questions every N steps of the copy and protocol phases (0 = only at the end of each)")
	fs.IntVar(&o.ProbeQuestions, "probe-questions", d.ProbeQuestions, "questions in each probe (about entities no episode mentions)")
	fs.Float64Var(&o.LR, "lr", d.LR, "peak learning rate (warm-up, then cosine decay, per phase)")
	fs.IntVar(&o.WarmupSteps, "warmup-steps", d.WarmupSteps, "learning-rate warm-up steps per phase")
	fs.StringVar(&o.Prompts, "game.prompts", d.Prompts, "prompt set of the episodes: minimal, ssp-short or ssp (as game.prompts of training and eval)")
	fs.IntVar(&o.TopK, "agent.top_k", d.TopK, "documents per search in the episodes and probes (as agent.top_k of training and eval)")
	fs.IntVar(&o.MaxInformationChars, "agent.max_information_chars", d.MaxInformationChars, "characters of search results per call (as agent.max_information_chars)")
	fs.IntVar(&o.NoiseBlocks, "verify.noise_blocks", d.NoiseBlocks, "noise blocks in RAG-verification episodes (as verify.noise_blocks)")
	fs.IntVar(&o.MaxPromptTokens, "verify.max_prompt_tokens", d.MaxPromptTokens, "longest RAG-verification prompt (as verify.max_prompt_tokens; also agent.max_prompt_tokens)")
	fs.IntVar(&o.MaxTurns, "agent.max_turns", d.MaxTurns, "model turns per probe (as agent.max_turns)")
	fs.IntVar(&o.MaxTokensPerTurn, "agent.max_tokens_per_turn", d.MaxTokensPerTurn, "tokens sampled per probe turn (as agent.max_tokens_per_turn)")
	fs.IntVar(&o.MaxResponseTokens, "agent.max_response_tokens", d.MaxResponseTokens, "tokens after the prompt per episode and probe (as agent.max_response_tokens)")
	if err := parseFlags(fs, args, bootstrapOldNames); err != nil {
		return err
	}
	if o.World == "" || o.Out == "" {
		return fmt.Errorf("%w: --world and --out are required", errUsage)
	}
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			o.ProtocolRoles = append(o.ProtocolRoles, r)
		}
	}
	if len(o.ProtocolRoles) == 0 {
		return fmt.Errorf("%w: --protocol-roles names no role (want some of solver, proposer, rag)", errUsage)
	}
	o.Logf = func(format string, args ...any) { slog.Info(fmt.Sprintf(format, args...)) }
	rep, err := bootstrap.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d parameters, vocabulary %d, final LM loss %s, final protocol loss %s\n",
		o.Out, rep.Parameters, rep.VocabSize, last(rep.LMLoss), last(rep.ProtocolLoss))
	return nil
}

// bootstrapOldNames are the agent flags' earlier spellings; the current
// ones are the configuration keys of training and eval.
var bootstrapOldNames = map[string]string{
	"prompts": "game.prompts", "top-k": "agent.top_k", "max-information-chars": "agent.max_information_chars",
	"noise-blocks": "verify.noise_blocks", "max-prompt-tokens": "verify.max_prompt_tokens", "max-turns": "agent.max_turns",
	"max-tokens-per-turn": "agent.max_tokens_per_turn", "max-response-tokens": "agent.max_response_tokens",
}

func last(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", xs[len(xs)-1])
}
