// Package bootstrap trains a base policy from nothing on a generated world
// (`ssp world bootstrap`): a byte-level BPE tokenizer learnt from the world's
// corpus, a small Llama-family model initialised at random, language
// modelling on the corpus, then a short warm-up on the search protocol
// (<search>, <information>, <answer>, <question>) from scripted single-hop
// episodes. The benchmark is never used.
//
// Self-play needs a policy that already follows the protocol well enough to
// produce an occasional valid question and a correct answer; pretrained
// instruct models give that for free, a model trained from scratch has to be
// taught it. What the warm-up leaves out (multi-hop search) is what
// self-play is meant to add.
package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/corpus"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/eval"
	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/model"
	"github.com/ssp-project/ssp/internal/outdir"
	"github.com/ssp-project/ssp/internal/score"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/selfplay"
	"github.com/ssp-project/ssp/internal/tokenizer"
	"github.com/ssp-project/ssp/internal/world"
)

// Options configures a bootstrap run.
type Options struct {
	World string // directory written by `ssp world gen` (world.json, corpus.jsonl)
	Index string // BM25 index of the world's corpus; built in a temporary directory when empty
	Out   string // model directory to write (HF layout, tokenizer included)
	Force bool   `json:"-"` // replace Out even when it is a directory that ssp did not write
	// Init, if set, continues from this checkpoint (its tokenizer and
	// weights) instead of training a tokenizer and initialising a model;
	// the shape options are then ignored.
	Init    string
	Seed    int64
	Backend string

	// Tokenizer and model shape.
	VocabSize                                    int
	Hidden, Layers, Heads, KVHeads, Intermediate int

	// Training.
	LMSteps int // language-modelling steps on the corpus
	// CopySteps are steps on copy drills (short solver episodes, see
	// episodeMaker.drills) between language modelling and the protocol
	// episodes, packed into rows of CopyPackLen tokens.
	CopySteps, CopyPackLen int
	ProtocolSteps          int     // warm-up steps on protocol episodes
	BatchSize              int     // sequences per step
	SeqLen                 int     // tokens per language-modelling sequence
	PackLen                int     // tokens per packed row of protocol episodes
	MaxHops                int     // longest question chain of the protocol episodes
	LR                     float64 // peak learning rate (cosine decay per phase)
	WarmupSteps            int
	// ContextWeight is the loss weight, in protocol episodes, of the tokens
	// the model does not write (the prompt, the inserted search results);
	// the model's own turns weigh 1. A small weight turns every results
	// block into copying practice at no extra cost: a block starts with the
	// title just searched for and repeats the names of the question.
	ContextWeight float64
	// ProtocolRoles are the roles whose episodes the protocol warm-up
	// trains on, of "solver", "proposer" and "rag" (all three when empty).
	// Leaving the solver out continues a base whose solver was taught by
	// copy drills: the proposer and the RAG check learn their part, and
	// the solver's turns are not reshaped by full-length result blocks.
	ProtocolRoles []string
	// DrillShare is the share of protocol-phase steps that train on a
	// batch of copy drills instead of protocol episodes. Teaching a base
	// that already solves the proposer's and the RAG check's parts on
	// protocol episodes alone unlearns its copying within tens of steps;
	// drills kept in the mix hold it.
	DrillShare float64
	// RAGDecoyShare is the share of RAG-check episodes that show, besides
	// the proposer's documents, the page of another entity of the answer's
	// kind (a decoy), and in one of two such episodes not the answer's own
	// page, so the answer is read from the page that states the last fact.
	// In self-play the proposer searches its target first, so the target's
	// page is in the RAG prompt even when the question leads elsewhere; a
	// checker trained only on episodes where the answer's page is always
	// there learns to name the page of the right kind and passes wrong
	// questions. The decoy plays the target of a wrong question.
	RAGDecoyShare float64
	// ProbeEvery runs the greedy solver on ProbeQuestions questions about
	// entities kept out of the episodes every N protocol steps (0 = only
	// at the end), to watch copying emerge.
	ProbeEvery, ProbeQuestions int

	// The agent settings the episodes imitate. They must match the
	// self-play and evaluation settings the model will be used with.
	Prompts                                                 string // prompt set (game.prompts)
	TopK, MaxInformationChars, NoiseBlocks, MaxPromptTokens int
	MaxTurns, MaxTokensPerTurn, MaxResponseTokens           int

	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any) `json:"-"`
}

// DefaultOptions sizes a bootstrap for a 2-core CPU in about an hour with
// the agent settings of the built-in default (see builtin.TrainConfig).
func DefaultOptions() Options {
	return Options{
		Seed: 1, VocabSize: 1024,
		Hidden: 64, Layers: 3, Heads: 4, KVHeads: 2, Intermediate: 192,
		LMSteps: 150, CopySteps: 0, CopyPackLen: 128, ProtocolSteps: 400, BatchSize: 8, SeqLen: 256, PackLen: 512, MaxHops: 2,
		LR: 3e-3, WarmupSteps: 30, ProbeEvery: 50, ProbeQuestions: 48,
		Prompts: selfplay.PromptsMinimal, TopK: 1, MaxInformationChars: 500, NoiseBlocks: 1, MaxPromptTokens: 1024,
		MaxTurns: 5, MaxTokensPerTurn: 48, MaxResponseTokens: 1200,
	}
}

// badRole returns the first of roles that is not a protocol role, or "".
func badRole(roles []string) string {
	for _, r := range roles {
		if r != "solver" && r != "proposer" && r != "rag" {
			return r
		}
	}
	return ""
}

// drillStep reports whether protocol step (0-based) trains on copy
// drills: DrillShare of the steps, spread evenly.
func (o Options) drillStep(step int) bool {
	return math.Floor(float64(step+1)*o.DrillShare) > math.Floor(float64(step)*o.DrillShare)
}

// drillSteps is the number of steps of copy drills, in the copy phase and
// interleaved in the protocol phase (drillStep is true exactly where
// floor(step·DrillShare) steps up, which it does floor(ProtocolSteps·
// DrillShare) times, DrillShare being below 1).
func (o Options) drillSteps() int {
	return o.CopySteps + int(math.Floor(float64(o.ProtocolSteps)*o.DrillShare))
}

// trainsRole reports whether the protocol warm-up has episodes of role.
func (o Options) trainsRole(role string) bool {
	return len(o.ProtocolRoles) == 0 || slices.Contains(o.ProtocolRoles, role)
}

func (o Options) validate() error {
	switch {
	case o.World == "":
		return fmt.Errorf("bootstrap: no world directory (--world)")
	case o.Out == "":
		return fmt.Errorf("bootstrap: no output directory (--out)")
	case o.Init == "" && o.VocabSize < 300:
		return fmt.Errorf("bootstrap: --vocab-size %d is below 300 (256 bytes plus protocol tokens)", o.VocabSize)
	case o.Init == "" && (o.Hidden < 8 || o.Layers < 1 || o.Heads < 1 || o.KVHeads < 1 || o.Intermediate < 1):
		return fmt.Errorf("bootstrap: model shape must be positive (hidden %d, layers %d, heads %d, kv heads %d, intermediate %d)", o.Hidden, o.Layers, o.Heads, o.KVHeads, o.Intermediate)
	case o.Init == "" && (o.Hidden%o.Heads != 0 || o.Heads%o.KVHeads != 0):
		return fmt.Errorf("bootstrap: --hidden %d must be a multiple of --heads %d, and --heads a multiple of --kv-heads %d", o.Hidden, o.Heads, o.KVHeads)
	case o.LMSteps < 0 || o.CopySteps < 0 || o.ProtocolSteps < 0 || o.BatchSize < 1 || o.SeqLen < 16 || o.LR <= 0:
		return fmt.Errorf("bootstrap: steps must be >= 0, batch >= 1, seq-len >= 16 and lr > 0")
	case o.TopK < 1 || o.MaxPromptTokens < 64:
		return fmt.Errorf("bootstrap: --agent.top_k must be >= 1 and --verify.max_prompt_tokens >= 64")
	case o.PackLen < 64 || o.CopyPackLen < 64 || o.MaxHops < 1 || o.MaxHops > 4:
		return fmt.Errorf("bootstrap: --pack-len and --copy-pack-len must be >= 64 and --max-hops between 1 and 4")
	case o.DrillShare < 0 || o.DrillShare >= 1:
		return fmt.Errorf("bootstrap: --protocol-drill-share %g is outside [0, 1)", o.DrillShare)
	case o.RAGDecoyShare < 0 || o.RAGDecoyShare > 1:
		return fmt.Errorf("bootstrap: --rag-decoy-share %g is outside [0, 1]", o.RAGDecoyShare)
	case o.ContextWeight < 0 || o.ContextWeight > 1:
		return fmt.Errorf("bootstrap: --context-weight %g is outside [0, 1]", o.ContextWeight)
	case badRole(o.ProtocolRoles) != "":
		return fmt.Errorf("bootstrap: --protocol-roles: unknown role %q (want solver, proposer or rag)", badRole(o.ProtocolRoles))
	case o.ProbeEvery < 0 || o.ProbeQuestions < 0:
		return fmt.Errorf("bootstrap: --probe-every and --probe-questions must be >= 0")
	case o.MaxTurns < 1 || o.MaxTokensPerTurn < 1 || o.MaxResponseTokens < 1:
		return fmt.Errorf("bootstrap: --agent.max_turns, --agent.max_tokens_per_turn and --agent.max_response_tokens must be >= 1")
	}
	return nil
}

// Report summarises a bootstrap run (written as bootstrap.json next to the
// model).
type Report struct {
	Options       Options        `json:"options"`
	Parameters    int            `json:"parameters"`
	VocabSize     int            `json:"vocab_size"`
	CorpusTokens  int            `json:"corpus_tokens"`
	Episodes      map[string]int `json:"episodes"`
	EpisodeTokens int            `json:"episode_tokens"` // all protocol episodes, one epoch
	DrillTokens   int            `json:"drill_tokens"`   // all copy drills, one epoch
	// ProtocolDrillSteps are the protocol-phase steps that trained on copy
	// drills (Options.DrillShare).
	ProtocolDrillSteps int            `json:"protocol_drill_steps"`
	Dropped            map[string]int `json:"dropped_episodes"`
	LMLoss             []float64      `json:"lm_loss"`       // mean loss per tenth of the phase
	CopyLoss           []float64      `json:"copy_loss"`     // mean loss per tenth of the phase
	ProtocolLoss       []float64      `json:"protocol_loss"` // mean loss per tenth of the phase
	// Probe is the greedy solver's exact match on questions about
	// entities no episode mentions, through the copy and protocol phases.
	Probe   []ProbePoint       `json:"probe"`
	Seconds map[string]float64 `json:"seconds"`
}

// ProbePoint is one probe of the solver during the copy and protocol phases.
type ProbePoint struct {
	Phase   string          `json:"phase"`   // "copy" or "protocol"
	Step    int             `json:"step"`    // within the phase
	Minutes float64         `json:"minutes"` // since the copy phase (or the protocol phase, without one) began
	Loss    float64         `json:"loss"`    // mean masked loss since the previous probe
	EM      float64         `json:"em"`      // percent, all probe questions
	EMHops  map[int]float64 `json:"em_by_hops"`
	Search  float64         `json:"searches"` // mean searches per question
	Example string          `json:"example"`  // the first question and the solver's response
	// The greedy proposer on the probe questions' answers (and hop
	// counts): the percent that write a question which names no answer
	// alias, and the percent of those the greedy RAG check, given only
	// the proposer's documents, answers right: the questions that would
	// count in self-play.
	Proposed  float64 `json:"proposed"`
	RAGPassed float64 `json:"rag_passed"`
	// Of the targets, the percent whose question passed the RAG check and
	// whose chain, read by world.Graph.Resolve, ends at the target (right)
	// or elsewhere (wrong); the rest of the passed ones are not in the
	// world's wordings. Self-play sees no such grade: it tells how far the
	// RAG check can be trusted.
	RAGPassedRight  float64 `json:"rag_passed_right"`
	RAGPassedWrong  float64 `json:"rag_passed_wrong"`
	ProposerExample string  `json:"proposer_example"` // the first target and the proposer's response
}

// AddedTokens are single tokens of the world tokenizer: the chat markers
// (special) and the agent protocol's tags, so that a small model sees every
// tag as one symbol.
var AddedTokens = []string{
	"<|endoftext|>", "<|im_start|>", "<|im_end|>",
	"<think>", "</think>", "<search>", "</search>", "<information>", "</information>",
	"<answer>", "</answer>", "<question>", "</question>",
}

// ChatMLTemplate is the chat template of the world tokenizer (Qwen's).
const ChatMLTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// Run bootstraps a model into o.Out. The model directory is assembled
// under a temporary name and renamed into place, so an interrupted run
// leaves no half-written model.
func Run(ctx context.Context, o Options) (Report, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep := Report{Options: o, Episodes: map[string]int{}, Seconds: map[string]float64{}}
	rep.Options.Logf = nil
	if err := o.validate(); err != nil {
		return rep, err
	}
	prompts, err := selfplay.Prompts(o.Prompts)
	if err != nil {
		return rep, fmt.Errorf("bootstrap: --game.prompts: %w", err)
	}
	outOpts := outdir.Options{Force: o.Force, ForceFlag: "--force"}
	if err := outdir.Check(o.Out, outdir.Model, outOpts); err != nil {
		return rep, err
	}
	g, err := loadWorld(o.World)
	if err != nil {
		return rep, err
	}
	corpusPath := filepath.Join(o.World, world.Files.Corpus)
	texts, err := readCorpus(ctx, corpusPath)
	if err != nil {
		return rep, err
	}

	// Scratch space for the tokenizer and the index; the model directory
	// itself is written by Model.Save, which renames it into place whole.
	tmp, err := os.MkdirTemp("", "ssp-bootstrap-*")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)

	var tok *tokenizer.Tokenizer
	var m *model.Model
	if o.Init != "" {
		// Continue from a checkpoint: its tokenizer and weights.
		if tok, err = tokenizer.Load(o.Init); err != nil {
			return rep, err
		}
		if m, err = model.Load(o.Init, model.LoadOptions{Backend: o.Backend}); err != nil {
			return rep, err
		}
		logf("continuing from %s", o.Init)
	} else {
		// 1. Tokenizer: learnt from the corpus and the protocol's prompts.
		t0 := time.Now()
		bpe, err := tokenizer.TrainBPE(ctx, trainingTexts(texts, prompts), tokenizer.TrainOptions{
			VocabSize: o.VocabSize, AddedTokens: AddedTokens, SpecialCount: 3,
			EOSToken: "<|im_end|>", PadToken: "<|endoftext|>", ChatTemplate: ChatMLTemplate,
			SplitPiece: splitNamePiece, InitialMerges: syllableMerges(),
		})
		if err != nil {
			return rep, err
		}
		// Every name of the world, with and without a leading space, must
		// come out as its syllables, whatever merges other words taught.
		dropped := bpe.DropCrossingMerges(nameParts(g))
		if err := bpe.WriteDir(tmp); err != nil {
			return rep, err
		}
		if tok, err = tokenizer.Load(tmp); err != nil {
			return rep, err
		}
		rep.Seconds["tokenizer"] = time.Since(t0).Seconds()
		logf("tokenizer: %d tokens (%d merges; %d dropped that would cut a name syllable) in %.1fs", bpe.VocabSize(), bpe.NumMerges(), dropped, rep.Seconds["tokenizer"])

		// 2. Model, initialised at random.
		if m, err = initModel(o, tok); err != nil {
			return rep, err
		}
		m.SetSourceDir(tmp) // Save copies the tokenizer files from here
	}
	defer m.Close()
	rep.VocabSize = tok.VocabSize()
	rep.Parameters = m.NumParameters()
	logf("model: %s, hidden %d, %d layers, %d parameters", m.Config.ModelType, m.Config.HiddenSize, m.Config.NumHiddenLayers, rep.Parameters)

	// 3. Language modelling on the corpus.
	endOfText, ok := tok.TokenID("<|endoftext|>")
	if eos := tok.EOSTokenIDs(); !ok && len(eos) > 0 {
		endOfText = eos[0] // a checkpoint from elsewhere (--init) separates passages with its EOS
	}
	var stream []int32
	for _, text := range texts {
		stream = append(append(stream, tok.Encode(text)...), endOfText)
	}
	rep.CorpusTokens = len(stream)
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0xb007))
	t0 := time.Now()
	rep.LMLoss, err = trainPhase(ctx, m, o, o.LMSteps, "language modelling", logf, func(int) ([][]int32, [][]float32) {
		batch := make([][]int32, o.BatchSize)
		for i := range batch {
			start := rng.IntN(max(1, len(stream)-o.SeqLen))
			batch[i] = stream[start:min(len(stream), start+o.SeqLen)]
		}
		return batch, nil
	})
	if err != nil {
		return rep, err
	}
	rep.Seconds["language_modelling"] = time.Since(t0).Seconds()

	// 4. Protocol warm-up on scripted episodes.
	searcher, closeIndex, err := openIndex(ctx, o, corpusPath, tmp)
	if err != nil {
		return rep, err
	}
	defer closeIndex()
	if n := searcher.NumDocs(); n != len(texts) {
		return rep, fmt.Errorf("bootstrap: --index %s holds %d documents but %s has %d passages: index the world's corpus", o.Index, n, corpusPath, len(texts))
	}
	maker := &episodeMaker{tok: tok, searcher: searcher, opts: o, prompts: prompts, rng: rng}
	// Entities of the probe never appear in an episode, so the probe
	// measures copying of unseen names, not recall.
	probeEntity := func(e *world.Entity) bool { return e.ID%probeEvery == probeEvery-1 }
	var probe []world.Question
	for _, q := range g.WarmUpQuestions(uint64(o.Seed)+1, 20*o.ProbeQuestions, o.MaxHops, nil) {
		// As in the benchmark, no multi-hop question ends at a country:
		// with a handful of countries a guess would often be right.
		answer := q.Path()[len(q.Path())-1]
		if q.Hops > 1 && answer.Kind == world.Country {
			continue
		}
		if probeEntity(q.Path()[0]) && len(probe) < o.ProbeQuestions {
			probe = append(probe, q)
		}
	}
	qs := g.WarmUpQuestions(uint64(o.Seed), o.ProtocolSteps*o.BatchSize, o.MaxHops, func(e *world.Entity) bool { return !probeEntity(e) })
	episodes, dropped, err := maker.make(ctx, qs)
	if err != nil {
		return rep, err
	}
	rep.Dropped = dropped
	episodeTokens := 0
	for _, e := range episodes {
		rep.Episodes[fmt.Sprintf("%s/%d-hop", e.Role, e.Hops)]++
		episodeTokens += len(e.Tokens)
	}
	rep.EpisodeTokens = episodeTokens
	logf("protocol episodes from %d questions: %v, %d tokens (dropped: %v); probe: %d questions", len(qs), rep.Episodes, episodeTokens, dropped, len(probe))
	if o.ProtocolSteps > 0 && len(episodes) == 0 {
		return rep, fmt.Errorf("bootstrap: no protocol episode could be built from %s", o.World)
	}
	t0 = time.Now()
	runProbe := func(phase string, step int, loss float64) error {
		if len(probe) == 0 {
			return nil
		}
		pt, err := probeSolver(ctx, m, tok, searcher, o, prompts, probe)
		if err != nil {
			return err
		}
		if err := probeProposer(ctx, m, tok, searcher, o, prompts, g, probe, &pt); err != nil {
			return err
		}
		pt.Phase, pt.Step, pt.Minutes, pt.Loss = phase, step, time.Since(t0).Minutes(), loss
		rep.Probe = append(rep.Probe, pt)
		logf("probe at %s step %d (%.1f min): EM %.1f%% %v, %.2f searches per question; e.g. %q", phase, step, pt.Minutes, pt.EM, pt.EMHops, pt.Search, pt.Example)
		logf("probe at %s step %d: proposer wrote a question for %.1f%% of the targets, %.1f%% passed the RAG check (%.1f%% right by the world's facts, %.1f%% wrong); e.g. %q", phase, step, pt.Proposed, pt.RAGPassed, pt.RAGPassedRight, pt.RAGPassedWrong, pt.ProposerExample)
		return nil
	}
	// batches serves batches of rows packed from eps to packLen tokens,
	// in a fresh random order each epoch.
	batches := func(eps []episode, packLen int) func() ([][]int32, [][]float32) {
		var rows [][]int32
		var masks [][]float32
		next := 0
		return func() ([][]int32, [][]float32) {
			if next+o.BatchSize > len(rows) {
				rng.Shuffle(len(eps), func(i, j int) { eps[i], eps[j] = eps[j], eps[i] })
				rows, masks = packRows(eps, packLen)
				next = 0
			}
			end := min(next+o.BatchSize, len(rows))
			seqs, ms := rows[next:end], masks[next:end]
			next = end
			return seqs, ms
		}
	}
	// trainOn trains a phase on the batches of next, probing every
	// o.ProbeEvery steps and at the end.
	trainOn := func(phase string, steps int, next func(step int) ([][]int32, [][]float32)) ([]float64, error) {
		lossSince, nSince := 0.0, 0
		return trainPhaseWith(ctx, m, o, steps, phase+" phase", logf, next, func(step int, loss float64) error {
			lossSince += loss
			nSince++
			if o.ProbeEvery > 0 && step%o.ProbeEvery == 0 || step == steps {
				err := runProbe(phase, step, lossSince/float64(nSince))
				lossSince, nSince = 0, 0
				return err
			}
			return nil
		})
	}

	// 4a. Copy drills: short solver episodes over worlds made for the
	// drills, mostly names to copy.
	var drills []episode
	if o.drillSteps() > 0 {
		var dropped map[string]int
		if drills, dropped, err = copyDrills(ctx, o, g, tok, prompts, tmp, rng, logf); err != nil {
			return rep, err
		}
		maps.Copy(rep.Dropped, dropped)
		tokens := 0
		for _, d := range drills {
			tokens += len(d.Tokens)
		}
		rep.Episodes["drill"] = len(drills)
		rep.DrillTokens = tokens
	}
	if o.CopySteps > 0 {
		drillBatch := batches(drills, o.CopyPackLen)
		if rep.CopyLoss, err = trainOn("copy", o.CopySteps, func(int) ([][]int32, [][]float32) { return drillBatch() }); err != nil {
			return rep, err
		}
		rep.Seconds["copy"] = time.Since(t0).Seconds()
	}

	// 4b. The protocol episodes of the roles asked for, with copy drills
	// interleaved at DrillShare of the steps.
	t1 := time.Now()
	protocolBatch, drillBatch := batches(episodes, o.PackLen), batches(drills, o.CopyPackLen)
	if rep.ProtocolLoss, err = trainOn("protocol", o.ProtocolSteps, func(step int) ([][]int32, [][]float32) {
		if o.drillStep(step) {
			rep.ProtocolDrillSteps++
			return drillBatch()
		}
		return protocolBatch()
	}); err != nil {
		return rep, err
	}
	rep.Seconds["protocol"] = time.Since(t1).Seconds()

	// 5. Write the model with its tokenizer, then the report.
	if err := m.SaveTo(o.Out, outOpts); err != nil {
		return rep, err
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return rep, err
	}
	f, err := os.CreateTemp(o.Out, ".bootstrap.json.tmp-*")
	if err != nil {
		return rep, err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return rep, err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return rep, err
	}
	if err := f.Close(); err != nil {
		return rep, err
	}
	return rep, os.Rename(f.Name(), filepath.Join(o.Out, ReportFile))
}

// ReportFile is the report Run writes beside the model.
const ReportFile = "bootstrap.json"

// ReadReport reads the report of a model directory written by Run; ok is
// false when the directory has none.
func ReadReport(modelDir string) (rep Report, ok bool, err error) {
	path := filepath.Join(modelDir, ReportFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rep, false, nil
	}
	if err != nil {
		return rep, false, err
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return rep, false, fmt.Errorf("%s: %w", path, err)
	}
	return rep, true, nil
}

func loadWorld(dir string) (*world.Graph, error) {
	g, err := world.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return g, nil
}

func readCorpus(ctx context.Context, path string) ([]string, error) {
	src, err := corpus.Open(path, corpus.FormatJSONL)
	if err != nil {
		return nil, err
	}
	var texts []string
	for d, err := range src.Docs(ctx) {
		if err != nil {
			return nil, err
		}
		texts = append(texts, d.Contents)
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("bootstrap: %s holds no passages", path)
	}
	return texts, nil
}

// trainingTexts is the tokenizer's training text: the corpus and the role
// prompts, so that the protocol's fixed wording costs few tokens.
func trainingTexts(corpusTexts []string, prompts selfplay.PromptSet) iter.Seq[string] {
	return func(yield func(string) bool) {
		ps, pu := prompts.Proposer(selfplay.Seed{Answers: []string{"x"}}, 2)
		ss, su := prompts.Solver("x")
		rs, ru := prompts.RAG("x", nil)
		for _, p := range []string{ps, pu, ss, su, rs, ru} {
			for range 50 { // weigh the prompts like a few dozen passages
				if !yield(p) {
					return
				}
			}
		}
		for _, t := range corpusTexts {
			if !yield(t) {
				return
			}
		}
	}
}

func initModel(o Options, tok *tokenizer.Tokenizer) (*model.Model, error) {
	eos, _ := tok.TokenID("<|im_end|>")
	pad, _ := tok.TokenID("<|endoftext|>")
	cfgJSON, err := json.Marshal(map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": o.Hidden, "intermediate_size": o.Intermediate, "num_hidden_layers": o.Layers,
		"num_attention_heads": o.Heads, "num_key_value_heads": o.KVHeads,
		"rms_norm_eps": 1e-5, "max_position_embeddings": 4096, "rope_theta": 10000.0,
		"tie_word_embeddings": true, "initializer_range": 0.02, "hidden_act": "silu", "torch_dtype": "float32",
		"vocab_size": tok.VocabSize(), "eos_token_id": eos, "pad_token_id": pad, "bos_token_id": nil,
	})
	if err != nil {
		return nil, err
	}
	cfg, err := model.ParseConfig(cfgJSON)
	if err != nil {
		return nil, err
	}
	return model.Init(cfg, o.Seed, model.LoadOptions{Backend: o.Backend})
}

// openIndex opens o.Index, or builds the corpus index in a temporary
// directory under tmp.
func openIndex(ctx context.Context, o Options, corpusPath, tmp string) (*index.Index, func(), error) {
	dir := o.Index
	if dir == "" {
		dir = filepath.Join(tmp, ".index")
		src, err := corpus.Open(corpusPath, corpus.FormatJSONL)
		if err != nil {
			return nil, nil, err
		}
		if _, err := index.Build(ctx, src.Docs(ctx), dir, index.DefaultOptions()); err != nil {
			return nil, nil, fmt.Errorf("bootstrap: indexing %s: %w", corpusPath, err)
		}
	}
	ix, err := index.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	return ix, func() {
		ix.Close()
		if o.Index == "" {
			os.RemoveAll(dir)
		}
	}, nil
}

// copyDrills builds the copy drills (see episodeMaker.drills) from worlds
// generated for them alone: the same size and sentence forms as the user's
// world, new entities with new names. Drawn from the user's world, a drill
// could be answered from memory (the model has read every passage in the
// language-modelling phase and sees each entity in many drills); over a
// world it has never seen, only copying from the question and the results
// lowers the loss. Worlds are added until the drills fill the copy phase
// once (at most 8).
func copyDrills(ctx context.Context, o Options, g *world.Graph, tok *tokenizer.Tokenizer, prompts selfplay.PromptSet, tmp string,
	rng *rand.Rand, logf func(string, ...any)) ([]episode, map[string]int, error) {
	allDropped := map[string]int{}
	want := o.drillSteps() * o.BatchSize * o.CopyPackLen * 9 / 10
	var drills []episode
	tokens := 0
	for i := 0; i < 8 && tokens < want; i++ {
		seed := g.Seed ^ (0xd1a11<<8 + uint64(o.Seed)<<32 + uint64(i+1))
		dw, err := world.Generate(seed, g.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("bootstrap: drill world: %w", err)
		}
		dir := filepath.Join(tmp, fmt.Sprintf("drill-index-%d", i))
		docs := func(yield func(search.Document, error) bool) {
			for _, p := range dw.Passages() {
				if !yield(search.Document{ID: p.ID, Contents: p.Contents}, nil) {
					return
				}
			}
		}
		if _, err := index.Build(ctx, docs, dir, index.DefaultOptions()); err != nil {
			return nil, nil, fmt.Errorf("bootstrap: drill world index: %w", err)
		}
		ix, err := index.Open(dir)
		if err != nil {
			return nil, nil, err
		}
		maker := &episodeMaker{tok: tok, searcher: ix, opts: o, prompts: prompts, rng: rng}
		// As many questions as the world gives (they are distinct).
		qs := dw.WarmUpQuestions(seed, 50_000, o.MaxHops, nil)
		ds, dropped, err := maker.drills(ctx, qs)
		ix.Close()
		os.RemoveAll(dir)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range ds {
			tokens += len(d.Tokens)
		}
		drills = append(drills, ds...)
		for k, v := range dropped {
			allDropped[k] += v
		}
		logf("copy drills: world %d of seed %d, %d drills from %d questions (dropped: %v); %d drills, %d tokens in all", i+1, seed, len(ds), len(qs), dropped, len(drills), tokens)
	}
	if len(drills) == 0 {
		return nil, nil, fmt.Errorf("bootstrap: no copy drill could be built from worlds of the size of %s", o.World)
	}
	return drills, allDropped, nil
}

// trainPhase takes steps optimizer steps on batches from next, with a
// warm-up and cosine decay of its own, and returns the mean loss of each
// tenth of the phase.
func trainPhase(ctx context.Context, m *model.Model, o Options, steps int, name string, logf func(string, ...any),
	next func(step int) ([][]int32, [][]float32)) ([]float64, error) {
	return trainPhaseWith(ctx, m, o, steps, name, logf, next, nil)
}

// trainPhaseWith is trainPhase with after called after each step (1-based)
// with its loss; an error from after ends the phase.
func trainPhaseWith(ctx context.Context, m *model.Model, o Options, steps int, name string, logf func(string, ...any),
	next func(step int) ([][]int32, [][]float32), after func(step int, loss float64) error) ([]float64, error) {
	if steps == 0 {
		return nil, nil
	}
	tr, err := model.NewTrainer(m, model.OptimizerConfig{
		LR: o.LR, WeightDecay: 0.01, WarmupSteps: min(o.WarmupSteps, steps/2), TotalSteps: steps,
		Schedule: "cosine", MaxGradNorm: 1,
	})
	if err != nil {
		return nil, err
	}
	var curve []float64
	sum, n, tokens := 0.0, 0, 0
	start := time.Now()
	every := max(1, steps/10)
	for step := 0; step < steps; step++ {
		seqs, masks := next(step)
		st, err := tr.LMStep(ctx, seqs, masks)
		if err != nil {
			return curve, fmt.Errorf("bootstrap: %s step %d: %w", name, step+1, err)
		}
		if math.IsNaN(st.Loss) {
			return curve, fmt.Errorf("bootstrap: %s step %d: loss is NaN (lower --lr)", name, step+1)
		}
		sum += st.Loss
		n++
		if after != nil {
			if err := after(step+1, st.Loss); err != nil {
				return curve, err
			}
		}
		for _, s := range seqs {
			tokens += len(s)
		}
		if (step+1)%every == 0 || step+1 == steps {
			curve = append(curve, sum/float64(n))
			logf("%s: step %d/%d loss %.3f lr %.2e  %.0f tokens/s", name, step+1, steps, sum/float64(n), st.LR,
				float64(tokens)/time.Since(start).Seconds())
			sum, n = 0, 0
		}
	}
	return curve, nil
}

// probeEvery keeps one entity in probeEvery out of every protocol episode,
// for the probe.
const probeEvery = 16

// splitNamePiece cuts a pre-tokenised piece that is a made-up name word
// (with its leading space or punctuation, if any) into its syllables, so the
// tokenizer learns syllables, never merges across them.
func splitNamePiece(piece string) []string {
	lead := 0
	if piece != "" && !(piece[0] >= 'A' && piece[0] <= 'Z' || piece[0] >= 'a' && piece[0] <= 'z') {
		lead = 1
	}
	syl, ok := world.NameSyllables(piece[lead:])
	if !ok {
		return nil
	}
	syl[0] = piece[:lead] + syl[0]
	return syl
}

// syllableMerges are the tokenizer's first merges: each name syllable,
// lower-case and capitalised, so that any word is cut into them before the
// merges learnt from counts apply.
func syllableMerges() [][2]string {
	var out [][2]string
	for _, s := range world.Syllables() {
		out = append(out, [2]string{s[:1], s[1:]}, [2]string{strings.ToUpper(s[:1]), s[1:]})
	}
	return out
}

// nameParts lists every word of every name in the world as its syllables,
// with and without a leading space, for DropCrossingMerges.
func nameParts(g *world.Graph) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, e := range g.Entities {
		for _, name := range e.Answers() {
			for _, w := range strings.Fields(name) {
				syl, ok := world.NameSyllables(w)
				if !ok || seen[w] {
					continue
				}
				seen[w] = true
				spaced := slices.Clone(syl)
				spaced[0] = " " + spaced[0]
				out = append(out, syl, spaced)
			}
		}
	}
	return out
}

// probeAgentConfig is the greedy agent loop of the probes, with the agent
// settings of the options, ending at finalTag.
func probeAgentConfig(o Options, tok *tokenizer.Tokenizer, finalTag string) agent.Config {
	return agent.Config{
		FinalTag: finalTag, Search: true, MaxTurns: o.MaxTurns, MaxTokensPerTurn: o.MaxTokensPerTurn,
		MaxResponseTokens: o.MaxResponseTokens, TopK: o.TopK, MaxInformationChars: o.MaxInformationChars,
		Temperature: 0, TopP: 1, EOSTokenIDs: tok.EOSTokenIDs(),
	}
}

// probeSolver runs the greedy solver, with the agent settings of the
// options, on questions and scores exact match by hop count.
func probeSolver(ctx context.Context, m *model.Model, tok *tokenizer.Tokenizer, searcher *index.Index, o Options, prompts selfplay.PromptSet, qs []world.Question) (ProbePoint, error) {
	solve := eval.AgentSolver(m, tok, searcher, prompts.Solver, probeAgentConfig(o, tok, "answer"))
	examples := make([]dataset.Example, len(qs))
	for i, q := range qs {
		examples[i] = dataset.Example{ID: q.ID, Question: q.Question, GoldenAnswers: q.Answers, Hops: q.Hops}
	}
	trajs, err := solve(ctx, examples)
	if err != nil {
		return ProbePoint{}, fmt.Errorf("bootstrap: probe: %w", err)
	}
	byID := make(map[string]eval.Trajectory, len(trajs))
	for _, t := range trajs {
		byID[t.ID] = t
	}
	pt := ProbePoint{EMHops: map[int]float64{}}
	perHops := map[int]int{}
	correct := 0
	for _, q := range qs {
		t := byID[q.ID]
		perHops[q.Hops]++
		pt.Search += float64(t.Searches) / float64(len(qs))
		if score.ExactMatch(t.Prediction, q.Answers) {
			correct++
			pt.EMHops[q.Hops]++
		}
	}
	for h, n := range perHops {
		pt.EMHops[h] = 100 * pt.EMHops[h] / float64(n)
	}
	pt.EM = 100 * float64(correct) / float64(len(qs))
	pt.Example = qs[0].Question + " → " + byID[qs[0].ID].Response
	return pt, nil
}

// probeProposer runs the greedy proposer with the probe questions' answers
// as targets, checks each question it writes (present, no answer alias in
// it) and has the greedy RAG check answer the valid ones from the
// proposer's own documents; it fills pt's proposer fields.
func probeProposer(ctx context.Context, m *model.Model, tok *tokenizer.Tokenizer, searcher *index.Index, o Options, prompts selfplay.PromptSet, g *world.Graph, qs []world.Question, pt *ProbePoint) error {
	cfg := probeAgentConfig(o, tok, "question")
	chat := func(system, user string) ([]int32, error) {
		text, err := tok.SystemUserPrompt(system, user)
		return tok.Encode(text), err
	}
	var proposerPrompts [][]int32
	for _, q := range qs {
		p, err := chat(prompts.Proposer(selfplay.Seed{Answers: q.Answers}, q.Hops))
		if err != nil {
			return err
		}
		proposerPrompts = append(proposerPrompts, p)
	}
	trajs, err := agent.Run(ctx, m, tok, searcher, proposerPrompts, cfg)
	if err != nil {
		return fmt.Errorf("bootstrap: proposer probe: %w", err)
	}
	var ragPrompts [][]int32
	var ragAnswers [][]string
	var ragQuestions []string
	for i, t := range trajs {
		question, v := selfplay.ExtractQuestion(t.Generated)
		if !v.Pass || !selfplay.CheckAnswerLeak(question, qs[i].Answers).Pass {
			continue
		}
		p, err := chat(prompts.RAG(question, t.Documents()))
		if err != nil {
			return err
		}
		ragPrompts = append(ragPrompts, p)
		ragAnswers = append(ragAnswers, qs[i].Answers)
		ragQuestions = append(ragQuestions, question)
	}
	passed, right, wrong := 0, 0, 0
	if len(ragPrompts) > 0 {
		cfg.FinalTag, cfg.Search, cfg.MaxTurns = "answer", false, 1
		answers, err := agent.Run(ctx, m, tok, searcher, ragPrompts, cfg)
		if err != nil {
			return fmt.Errorf("bootstrap: proposer probe, RAG check: %w", err)
		}
		for i, a := range answers {
			if pred, ok := score.ExtractAnswer(a.Generated); ok && score.ExactMatch(pred, ragAnswers[i]) {
				passed++
				switch grade, _ := g.Grade(ragQuestions[i], ragAnswers[i]); grade {
				case world.Right:
					right++
				case world.Wrong:
					wrong++
				}
			}
		}
	}
	pt.Proposed = 100 * float64(len(ragPrompts)) / float64(len(qs))
	pt.RAGPassed = 100 * float64(passed) / float64(len(qs))
	pt.RAGPassedRight = 100 * float64(right) / float64(len(qs))
	pt.RAGPassedWrong = 100 * float64(wrong) / float64(len(qs))
	pt.ProposerExample = qs[0].Answers[0] + " → " + trajs[0].Response
	return nil
}
