package selfplay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ssp-project/ssp/internal/model"
)

// Config is every knob of a self-play run. DefaultConfig holds SSP's values
// where the paper or its released scripts fix one; the help tags are the
// documentation shown by --help and in docs/config.md.
type Config struct {
	Run      RunConfig      `yaml:"run"`
	Game     GameConfig     `yaml:"game"`
	Agent    AgentConfig    `yaml:"agent"`
	Proposer ProposerConfig `yaml:"proposer"`
	Solver   SolverConfig   `yaml:"solver"`
	Filter   FilterConfig   `yaml:"filter"`
	Verify   VerifyConfig   `yaml:"verify"`
	Pool     PoolConfig     `yaml:"pool"`
	Optim    OptimConfig    `yaml:"optim"`
}

// RunConfig says what to train, on what, and where to write.
type RunConfig struct {
	Model        string `yaml:"model" help:"policy checkpoint directory (Hugging Face layout); also the frozen KL reference (with LoRA, the base the adapters are trained on)"`
	Adapter      string `yaml:"adapter" help:"PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) to start from, loaded onto run.model: a LoRA run with the adapter's rank, alpha, dropout and targets (optim.lora.rank must be 0 or the adapter's r); the KL reference stays run.model without adapters"`
	Backend      string `yaml:"backend" help:"compute backend: \"go\" (pure Go on the CPU, needs nothing installed), \"xla:cpu\", \"xla:cuda\" (need XLA's PJRT plugin in a folder named by PJRT_PLUGIN_LIBRARY_PATH; nothing is downloaded); empty: $GOMLX_BACKEND, else go"`
	ComputeDType string `yaml:"compute_dtype" help:"dtype of matmuls and activations: \"float32\" or \"bfloat16\" (mixed precision: norms, softmax, log-probs and losses stay float32, trained weights and AdamW state are float32)"`
	FrozenDType  string `yaml:"frozen_dtype" help:"dtype of the weights that are not trained: with LoRA the base, in full fine-tuning the KL reference: \"float32\" or \"bfloat16\" (half the memory; trained weights are always float32)"`
	Index        string `yaml:"index" help:"embedded BM25 index directory (exclusive with retriever)"`
	Retriever    string `yaml:"retriever" help:"URL of a Search-R1-compatible /retrieve server (exclusive with index)"`
	Ranking      string `yaml:"ranking" help:"how run.index ranks: \"bm25\" (its inverted index), \"dense\" (its vectors, made by ssp index build --encoder) or \"hybrid\" (both, fused by reciprocal rank); empty = bm25"`
	Encoder      string `yaml:"encoder" help:"query encoder directory for run.ranking dense or hybrid; empty = the encoder the index's vectors were made with"`
	Seeds        string `yaml:"seeds" help:"JSONL file of target answers: {\"answer\": str or [aliases], \"hops\": n} (SSP rows with ground_truth also accepted)"`
	EvalData     string `yaml:"eval_data" help:"held-out QA file (eval format) the solver is validated on during training; empty = no validation"`
	EvalEvery    int    `yaml:"eval_every" help:"validate every N steps and after the last step (0 = never); reports go to <out>/eval/step-N/"`
	EvalFirst    bool   `yaml:"eval_first" help:"with run.eval_every, also validate the starting policy before the first step (step-0); off saves a pass when several runs share a base"`
	EvalLimit    int    `yaml:"eval_limit" help:"validate on the first N questions of run.eval_data (0 = all)"`
	QAData       string `yaml:"qa_data" help:"JSONL/parquet QA file (question, golden_answers) for game.problems \"qa\"; unused in self-play"`
	Out          string `yaml:"out" help:"run directory: metrics.jsonl, TensorBoard events, rollouts/, checkpoints/"`
	Steps        int    `yaml:"steps" help:"training steps (one step = one batch of proposals, their solver rollouts and the updates)"`
	SaveEvery    int    `yaml:"save_every" help:"write a checkpoint every N steps (and after the last step); SSP: 5"`
	Seed         int64  `yaml:"seed" help:"seed for seed-order shuffling, sampling and RAG noise; a step's randomness depends only on (seed, step)"`
}

// GameConfig shapes one step of the game.
type GameConfig struct {
	BatchSize        int    `yaml:"batch_size" help:"target answers proposed per step; SSP: 256"`
	ProposerRollouts int    `yaml:"proposer_rollouts" help:"proposer trajectories per target answer; SSP: 1"`
	SolverRollouts   int    `yaml:"solver_rollouts" help:"solver rollouts per question (the GRPO group size; at least 2 when the solver is trained); SSP: 5"`
	CombinedUpdate   bool   `yaml:"combined_update" help:"one optimizer update over proposer and solver trajectories together instead of proposer then solver; SSP: false"`
	TrainProposer    bool   `yaml:"train_proposer" help:"update the policy on proposer trajectories"`
	TrainSolver      bool   `yaml:"train_solver" help:"update the policy on solver trajectories"`
	Prompts          string `yaml:"prompts" help:"prompt wording for the proposer, solver and RAG check: \"ssp-short\" (compact instructions), \"ssp\" (the structure of SSP's released prompts: the proposer builds its question backwards from the answer, with example questions; the Search-R1 solver instruction) or \"minimal\" (one line per role, for small models trained from scratch; the built-in model was bootstrapped on it); validation during training uses the same solver prompt"`
	Problems         string `yaml:"problems" help:"where the solver's questions come from: \"selfplay\" (the proposer writes them from seed answers; no labels) or \"qa\" (questions and gold answers from run.qa_data: the supervised Search-R1-style baseline)"`
}

// Problem sources (game.problems).
const (
	ProblemsSelfPlay = "selfplay"
	ProblemsQA       = "qa"
)

// AgentConfig bounds every multi-turn search rollout.
type AgentConfig struct {
	MaxTurns            int `yaml:"max_turns" help:"model turns per trajectory (each search call ends a turn); SSP: 10"`
	MaxTokensPerTurn    int `yaml:"max_tokens_per_turn" help:"most tokens sampled per turn (0 = no bound but agent.max_response_tokens, as in SSP); a turn cut at the bound is continued by the next turn, so the bound only splits long turns, each part counting against agent.max_turns"`
	MaxResponseTokens   int `yaml:"max_response_tokens" help:"tokens after the prompt, generated and inserted; SSP: 8192"`
	MaxPromptTokens     int `yaml:"max_prompt_tokens" help:"longest proposer or solver prompt (a longer one is an error; the RAG prompt has its own budget, verify.max_prompt_tokens); SSP: 4096"`
	TopK                int `yaml:"top_k" help:"documents returned per search call; Search-R1: 3"`
	MaxInformationChars int `yaml:"max_information_chars" help:"characters of search results inserted per call (0 = no bound)"`
}

// ProposerConfig is the question writer's sampling and reward.
type ProposerConfig struct {
	Temperature   float32 `yaml:"temperature" help:"sampling temperature for proposer rollouts; SSP: 0.8"`
	TopP          float32 `yaml:"top_p" help:"nucleus sampling for proposer rollouts (1 = off)"`
	Reward        string  `yaml:"reward" help:"proposer reward from the solvers' success rate s: \"1-acc\" (1-s, SSP) or \"intermediate\" (4·s·(1-s))"`
	Advantage     string  `yaml:"advantage" help:"proposer advantage estimator: \"reinforce++\" (batch-whitened reward, SSP's default) or \"grpo\" (whitened within the rollouts of one target answer; with proposer_rollouts 1, as in SSP's released run, each proposal's advantage is its reward: verl's rule for a group of one)"`
	FormatPenalty float64 `yaml:"format_penalty" help:"proposer reward when no valid question comes out (no <question>, a filter or RAG verification failed); SSP: -1"`
}

// SolverConfig is the question answerer's sampling and reward.
type SolverConfig struct {
	Temperature        float32 `yaml:"temperature" help:"sampling temperature for solver rollouts; SSP: 1.0"`
	TopP               float32 `yaml:"top_p" help:"nucleus sampling for solver rollouts (1 = off)"`
	MaxAnswerTags      int     `yaml:"max_answer_tags" help:"a correct response that wrote more than this many <answer> tags (counted in the text the policy generated, not in inserted search results) earns 1/multi_answer_divisor; SSP: 10"`
	MultiAnswerDivisor float64 `yaml:"multi_answer_divisor" help:"divides the reward of a correct response with more than max_answer_tags <answer> tags (discourages answer spamming); 1 disables; SSP: 4"`
	FilterGroups       bool    `yaml:"filter_groups" help:"train the solver only on the rollouts of questions whose rollouts earned different rewards: the others have advantage 0 and add only their KL pull to the reference; a step with none takes no solver optimizer step, so AdamW's momentum from the proposer's update is not applied again in the solver's (DAPO's group filter, without its resampling); SSP: false"`
}

// FilterConfig holds the rule checks a proposed question must pass before
// RAG verification.
type FilterConfig struct {
	MinQuestionChars      int     `yaml:"min_question_chars" help:"shortest question in characters"`
	MaxQuestionChars      int     `yaml:"max_question_chars" help:"longest question in characters"`
	MinQuestionWords      int     `yaml:"min_question_words" help:"fewest words in a question"`
	MaxQuestionWords      int     `yaml:"max_question_words" help:"most words in a question"`
	MinSearches           int     `yaml:"min_searches" help:"fewest distinct search queries the proposer must have issued"`
	RequireHops           bool    `yaml:"require_hops" help:"also require at least as many distinct searches as the seed's hops"`
	RequireAnswerEvidence bool    `yaml:"require_answer_evidence" help:"reject proposals whose retrieved documents name the answer only on the answer's own page (its title one of the answer's names): the fact that leads to the answer must be on a page about something else the proposer read; not in SSP"`
	GroundedSearches      bool    `yaml:"grounded_searches" help:"reject proposals with a search, after the first, that uses a word neither the target's names nor the results shown before it contain: a search for a name the proposer never read walks off its chain; not in SSP"`
	RejectAnswerInQueries bool    `yaml:"reject_answer_in_queries" help:"reject proposals whose search queries contain the answer (SSP's use_search_terms_filter; SSP: false)"`
	DuplicateJaccard      float64 `yaml:"duplicate_jaccard" help:"reject a question whose normalised word-set Jaccard similarity to an earlier question of the batch reaches this value (0 = off)"`
}

// VerifyConfig is the RAG check that a proposed question is answerable
// from the documents its proposer found.
type VerifyConfig struct {
	RAG             bool    `yaml:"rag" help:"verify each question by answering it from the proposer's documents without search; SSP: true"`
	NoiseBlocks     int     `yaml:"noise_blocks" help:"search-result blocks from other proposer trajectories mixed in as distractors; SSP: 4"`
	MaxPromptTokens int     `yaml:"max_prompt_tokens" help:"longest RAG prompt in tokens; when the documents do not fit, noise documents are left out first and the proposer's own only when no noise is left (counted in rag/noise_docs_dropped and rag/own_docs_dropped); 0 = agent.max_prompt_tokens + agent.max_response_tokens, the most a proposer trajectory, which already holds all its own documents, may reach"`
	Temperature     float32 `yaml:"temperature" help:"sampling temperature of the RAG answer (0 = greedy)"`
	RAGAnswerer     string  `yaml:"rag_answerer" help:"who answers the RAG check: \"policy\" (the policy being trained, one turn without search, as the paper describes) or \"judge\" (the chat model at verify.judge_url, as SSP's released code does; a weak base policy then still gets valid questions)"`
	JudgeURL        string  `yaml:"judge_url" help:"base URL of an OpenAI-compatible LLM judge consulted when exact match fails, for the RAG check and the solver reward (empty = exact match only); judge errors count as wrong"`
	JudgeModel      string  `yaml:"judge_model" help:"model name sent to the judge"`
	JudgeKeyEnv     string  `yaml:"judge_api_key_env" help:"environment variable holding the judge's bearer token (empty = none)"`
}

// RAG answerers (verify.rag_answerer).
const (
	RAGAnswererPolicy = "policy"
	RAGAnswererJudge  = "judge"
)

// PromptTokens is the RAG prompt's token budget (verify.max_prompt_tokens,
// or its default from the agent's bounds).
func (v VerifyConfig) PromptTokens(a AgentConfig) int {
	if v.MaxPromptTokens > 0 {
		return v.MaxPromptTokens
	}
	return a.MaxPromptTokens + a.MaxResponseTokens
}

// PoolConfig is the store of earlier valid questions that refills the
// solver batch when proposals fail.
type PoolConfig struct {
	Reuse          bool    `yaml:"reuse" help:"refill invalid proposal slots with earlier valid questions so the solver batch keeps its shape; SSP: true (extraction_failure.strategy=reuse)"`
	Order          string  `yaml:"order" help:"which earlier questions refill a slot: \"informative\" (questions some but not all rollouts solved, 0 < s < 1, at random, then the rest at random: a group all right or all wrong has advantage 0), \"hardest\" (lowest success rate first) or \"random\" (SSP)"`
	MaxSuccessRate float64 `yaml:"max_success_rate" help:"only reuse questions whose last solver success rate is at most this; SSP: 1.0"`
	ClearEvery     int     `yaml:"clear_every" help:"empty the pool every N steps to avoid stale questions (0 = never); SSP: 10"`
	KeepRatio      float64 `yaml:"keep_ratio" help:"fraction of the pool (hardest first) kept when it is cleared; SSP: 0"`
	MaxSize        int     `yaml:"max_size" help:"most questions kept; the easiest are dropped first"`
}

// OptimConfig is the policy update.
type OptimConfig struct {
	LR                      float64    `yaml:"lr" help:"AdamW learning rate; SSP: 1e-6"`
	WeightDecay             float64    `yaml:"weight_decay" help:"AdamW decoupled weight decay"`
	Beta1                   float64    `yaml:"beta1" help:"AdamW beta1"`
	Beta2                   float64    `yaml:"beta2" help:"AdamW beta2"`
	Eps                     float64    `yaml:"eps" help:"AdamW epsilon"`
	WarmupSteps             int        `yaml:"warmup_steps" help:"optimizer steps of linear learning-rate warm-up; SSP: 5"`
	Schedule                string     `yaml:"schedule" help:"learning-rate schedule after warm-up: \"constant\" (SSP), \"linear\" or \"cosine\" (both decay to 0 at the last step)"`
	MaxGradNorm             float64    `yaml:"max_grad_norm" help:"global gradient-norm clip; SSP: 1.0"`
	MiniBatches             int        `yaml:"mini_batches" help:"optimizer steps per update (per role, or for both with game.combined_update): the update's trajectories, shuffled, are split into this many near-equal mini-batches (fewer when there are fewer trajectories); verl: train_batch_size / ppo_mini_batch_size, SSP: 2"`
	MicroBatchSize          int        `yaml:"micro_batch_size" help:"trajectories per forward/backward pass (gradient accumulation); bounds memory"`
	LogProbChunkTokens      int        `yaml:"logprob_chunk_tokens" help:"positions whose logits the LM head computes at once when scoring and training (0 = the whole sequence): peak memory holds a few [micro-batch, chunk, vocab] float32 tensors instead of [micro-batch, length, vocab] ones (5 GB per 8k-token sequence at a 152k vocabulary)"`
	ActivationCheckpointing bool       `yaml:"activation_checkpointing" help:"keep only each decoder layer's input through the forward pass and recompute the layer in the backward pass: far less activation memory for about one more forward pass of compute"`
	ClipLow                 float32    `yaml:"clip_low" help:"PPO ratio lower clip 1-clip_low; SSP: 0.2"`
	ClipHigh                float32    `yaml:"clip_high" help:"PPO ratio upper clip 1+clip_high (clip-higher); SSP: 0.28"`
	DualClip                float32    `yaml:"dual_clip" help:"dual-clip PPO: a token with negative advantage A contributes at most -dual_clip·A to the loss, however large its ratio (0 = off, else above 1); verl's clip_ratio_c: 3"`
	KLCoef                  float32    `yaml:"kl_coef" help:"weight of the k3 KL penalty to the frozen initial policy (0 disables the reference model); SSP: 0.01"`
	KLClamp                 float32    `yaml:"kl_clamp" help:"clamp each token's k3 KL estimate to ±kl_clamp (0 = off); verl: 10"`
	AdvantageEps            float64    `yaml:"advantage_eps" help:"added to the standard deviation when whitening rewards"`
	LoRA                    LoRAConfig `yaml:"lora"`
}

// LoRAConfig trains low-rank adapters instead of every weight (docs/lora.md).
type LoRAConfig struct {
	Rank       int        `yaml:"rank" help:"LoRA rank r: train low-rank adapters on the projections named by optim.lora.targets instead of every weight, with AdamW state for the adapters only; the KL reference is the base with the adapters off (no second copy). 0 = off (full fine-tuning)"`
	Alpha      float64    `yaml:"alpha" help:"LoRA alpha: the adapters' output is scaled by alpha/rank"`
	Dropout    float64    `yaml:"dropout" help:"LoRA dropout: probability of zeroing each entry of an adapter's input in training steps (never when sampling or scoring)"`
	Targets    TargetList `yaml:"targets" help:"projections that get adapters, comma-separated (a YAML list also works): q, k, v, o, gate, up, down"`
	SaveMerged bool       `yaml:"save_merged" help:"checkpoints of a LoRA run also hold merged/, a full Hugging Face model with the adapters merged in (the adapter, in PEFT's format, is always saved)"`
}

// TargetList is a comma-separated list of module names; in YAML it may
// also be written as a list.
type TargetList string

// UnmarshalYAML accepts "q,v" and [q, v].
func (l *TargetList) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.SequenceNode {
		var names []string
		if err := node.Decode(&names); err != nil {
			return err
		}
		*l = TargetList(strings.Join(names, ","))
		return nil
	}
	var s string
	if err := node.Decode(&s); err != nil {
		return err
	}
	*l = TargetList(s)
	return nil
}

// Names splits the list, dropping blanks.
func (l TargetList) Names() []string {
	var out []string
	for _, n := range strings.Split(string(l), ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// DefaultConfig returns a complete configuration with SSP's values where
// they apply.
func DefaultConfig() Config {
	return Config{
		Run: RunConfig{Out: "runs/ssp", Steps: 200, SaveEvery: 5, Seed: 1, EvalFirst: true, ComputeDType: "float32", FrozenDType: "float32"},
		Game: GameConfig{BatchSize: 256, ProposerRollouts: 1, SolverRollouts: 5,
			TrainProposer: true, TrainSolver: true, Prompts: PromptsSSPShort, Problems: ProblemsSelfPlay},
		Agent: AgentConfig{MaxTurns: 10, MaxTokensPerTurn: 0, MaxResponseTokens: 8192,
			MaxPromptTokens: 4096, TopK: 3, MaxInformationChars: 3000},
		Proposer: ProposerConfig{Temperature: 0.8, TopP: 1, Reward: "1-acc", Advantage: "reinforce++", FormatPenalty: -1},
		Solver:   SolverConfig{Temperature: 1, TopP: 1, MaxAnswerTags: 10, MultiAnswerDivisor: 4},
		Filter: FilterConfig{MinQuestionChars: 10, MaxQuestionChars: 1000, MinQuestionWords: 4,
			MaxQuestionWords: 150, MinSearches: 2, DuplicateJaccard: 0.8},
		Verify: VerifyConfig{RAG: true, NoiseBlocks: 4, RAGAnswerer: RAGAnswererPolicy},
		Pool:   PoolConfig{Reuse: true, Order: PoolOrderInformative, MaxSuccessRate: 1, ClearEvery: 10, KeepRatio: 0, MaxSize: 4096},
		Optim: OptimConfig{LR: 1e-6, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
			WarmupSteps: 5, Schedule: "constant", MaxGradNorm: 1, MiniBatches: 2, MicroBatchSize: 4, LogProbChunkTokens: 512,
			ClipLow: 0.2, ClipHigh: 0.28, DualClip: 3, KLCoef: 0.01, KLClamp: 10, AdvantageEps: 1e-6,
			LoRA: LoRAConfig{Rank: 0, Alpha: 32, Dropout: 0, Targets: "q,k,v,o,gate,up,down"}},
	}
}

// removedKeys are keys earlier versions accepted, with what replaced them,
// so that an old configuration fails with a pointer to the new key.
var removedKeys = map[string]string{
	"optim.mini_batch_size": "replaced by optim.mini_batches, the number of optimizer steps per update " +
		"(SSP's ppo_mini_batch_size 128 of train_batch_size 256 is optim.mini_batches: 2)",
}

// checkRemovedKeys reports the first removed key the YAML document sets.
func checkRemovedKeys(data []byte) error {
	var doc map[string]map[string]any
	if yaml.Unmarshal(data, &doc) != nil {
		return nil // the strict decoder reports what is wrong with the file
	}
	for section, keys := range doc {
		for key := range keys {
			if why, ok := removedKeys[section+"."+key]; ok {
				return fmt.Errorf("%s.%s: %s", section, key, why)
			}
		}
	}
	return nil
}

// LoadConfig reads a YAML file over the defaults. Unknown keys are errors,
// so a misspelt knob never silently keeps its default.
func LoadConfig(path string) (Config, error) {
	return LoadConfigOver(DefaultConfig(), path)
}

// LoadConfigOver reads a YAML file over base (keys the file leaves out keep
// base's values).
func LoadConfigOver(base Config, path string) (Config, error) {
	cfg := base
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := checkRemovedKeys(data); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate reports the first inconsistent field by its YAML path.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
	}
	positive := []struct {
		field string
		value int
	}{
		{"run.steps", c.Run.Steps}, {"run.save_every", c.Run.SaveEvery},
		{"game.batch_size", c.Game.BatchSize}, {"game.proposer_rollouts", c.Game.ProposerRollouts},
		{"game.solver_rollouts", c.Game.SolverRollouts},
		{"agent.max_turns", c.Agent.MaxTurns},
		{"agent.max_response_tokens", c.Agent.MaxResponseTokens}, {"agent.max_prompt_tokens", c.Agent.MaxPromptTokens},
		{"agent.top_k", c.Agent.TopK}, {"pool.max_size", c.Pool.MaxSize}, {"optim.micro_batch_size", c.Optim.MicroBatchSize},
		{"optim.mini_batches", c.Optim.MiniBatches},
	}
	for _, p := range positive {
		if p.value < 1 {
			return bad(p.field, "must be at least 1, got %d", p.value)
		}
	}
	nonNegative := []struct {
		field string
		value int
	}{
		{"agent.max_information_chars", c.Agent.MaxInformationChars}, {"agent.max_tokens_per_turn", c.Agent.MaxTokensPerTurn},
		{"optim.logprob_chunk_tokens", c.Optim.LogProbChunkTokens},
		{"filter.min_question_chars", c.Filter.MinQuestionChars}, {"filter.min_question_words", c.Filter.MinQuestionWords},
		{"filter.min_searches", c.Filter.MinSearches}, {"solver.max_answer_tags", c.Solver.MaxAnswerTags}, {"verify.noise_blocks", c.Verify.NoiseBlocks},
		{"verify.max_prompt_tokens", c.Verify.MaxPromptTokens},
		{"pool.clear_every", c.Pool.ClearEvery}, {"optim.warmup_steps", c.Optim.WarmupSteps},
		{"run.eval_every", c.Run.EvalEvery}, {"run.eval_limit", c.Run.EvalLimit}, {"optim.lora.rank", c.Optim.LoRA.Rank},
	}
	for _, p := range nonNegative {
		if p.value < 0 {
			return bad(p.field, "must not be negative, got %d", p.value)
		}
	}
	switch {
	case c.Run.Index != "" && c.Run.Retriever != "":
		return bad("run.index", "set either run.index or run.retriever, not both")
	case c.Run.Ranking != "" && c.Run.Ranking != "bm25" && c.Run.Ranking != "dense" && c.Run.Ranking != "hybrid":
		return bad("run.ranking", "must be \"bm25\", \"dense\" or \"hybrid\", got %q", c.Run.Ranking)
	case c.Run.Retriever != "" && c.Run.Ranking != "" && c.Run.Ranking != "bm25":
		return bad("run.ranking", "%q applies to run.index; a run.retriever server ranks by its own method", c.Run.Ranking)
	case c.Run.ComputeDType != "float32" && c.Run.ComputeDType != "bfloat16":
		return bad("run.compute_dtype", "must be \"float32\" or \"bfloat16\", got %q", c.Run.ComputeDType)
	case c.Run.FrozenDType != "float32" && c.Run.FrozenDType != "bfloat16":
		return bad("run.frozen_dtype", "must be \"float32\" or \"bfloat16\", got %q", c.Run.FrozenDType)
	case c.Filter.MaxQuestionChars < c.Filter.MinQuestionChars:
		return bad("filter.max_question_chars", "%d is below filter.min_question_chars %d", c.Filter.MaxQuestionChars, c.Filter.MinQuestionChars)
	case c.Filter.MaxQuestionWords < c.Filter.MinQuestionWords:
		return bad("filter.max_question_words", "%d is below filter.min_question_words %d", c.Filter.MaxQuestionWords, c.Filter.MinQuestionWords)
	case c.Filter.DuplicateJaccard < 0 || c.Filter.DuplicateJaccard > 1:
		return bad("filter.duplicate_jaccard", "must be in [0, 1], got %v", c.Filter.DuplicateJaccard)
	case c.Proposer.Temperature < 0:
		return bad("proposer.temperature", "must not be negative, got %v", c.Proposer.Temperature)
	case c.Solver.Temperature < 0:
		return bad("solver.temperature", "must not be negative, got %v", c.Solver.Temperature)
	case c.Verify.Temperature < 0:
		return bad("verify.temperature", "must not be negative, got %v", c.Verify.Temperature)
	case c.Proposer.TopP <= 0 || c.Proposer.TopP > 1:
		return bad("proposer.top_p", "must be in (0, 1], got %v", c.Proposer.TopP)
	case c.Solver.TopP <= 0 || c.Solver.TopP > 1:
		return bad("solver.top_p", "must be in (0, 1], got %v", c.Solver.TopP)
	case c.Proposer.Reward != "1-acc" && c.Proposer.Reward != "intermediate":
		return bad("proposer.reward", "must be \"1-acc\" or \"intermediate\", got %q", c.Proposer.Reward)
	case c.Proposer.Advantage != "reinforce++" && c.Proposer.Advantage != "grpo":
		return bad("proposer.advantage", "must be \"reinforce++\" or \"grpo\", got %q", c.Proposer.Advantage)
	case c.Game.TrainSolver && c.Game.SolverRollouts < 2:
		return bad("game.solver_rollouts", "must be at least 2 when game.train_solver is true (got %d): GRPO compares the rollouts of one question with each other, and one rollout has nothing to be compared with", c.Game.SolverRollouts)
	case c.Game.TrainProposer && c.Game.Problems == ProblemsSelfPlay && c.Proposer.Advantage == "reinforce++" && c.Game.BatchSize*c.Game.ProposerRollouts < 2:
		return bad("game.batch_size", "game.batch_size × game.proposer_rollouts must be at least 2 with proposer.advantage \"reinforce++\" (got %d): whitening over a batch of one gives the proposer advantage 0", c.Game.BatchSize*c.Game.ProposerRollouts)
	case c.Solver.MultiAnswerDivisor < 1:
		return bad("solver.multi_answer_divisor", "must be at least 1, got %v", c.Solver.MultiAnswerDivisor)
	case c.Pool.Order != PoolOrderInformative && c.Pool.Order != PoolOrderHardest && c.Pool.Order != PoolOrderRandom:
		return bad("pool.order", "must be %q, %q or %q, got %q", PoolOrderInformative, PoolOrderHardest, PoolOrderRandom, c.Pool.Order)
	case c.Pool.MaxSuccessRate < 0 || c.Pool.MaxSuccessRate > 1:
		return bad("pool.max_success_rate", "must be in [0, 1], got %v", c.Pool.MaxSuccessRate)
	case c.Pool.KeepRatio < 0 || c.Pool.KeepRatio > 1:
		return bad("pool.keep_ratio", "must be in [0, 1], got %v", c.Pool.KeepRatio)
	case c.Verify.RAGAnswerer != RAGAnswererPolicy && c.Verify.RAGAnswerer != RAGAnswererJudge:
		return bad("verify.rag_answerer", "must be %q or %q, got %q", RAGAnswererPolicy, RAGAnswererJudge, c.Verify.RAGAnswerer)
	case c.Verify.RAGAnswerer == RAGAnswererJudge && c.Verify.JudgeURL == "":
		return bad("verify.rag_answerer", "\"judge\" needs verify.judge_url (and verify.judge_model): the chat endpoint that answers the RAG check")
	case c.Verify.JudgeURL != "" && c.Verify.JudgeModel == "":
		return bad("verify.judge_model", "is required when verify.judge_url is set")
	case c.Run.EvalEvery > 0 && c.Run.EvalData == "":
		return bad("run.eval_data", "is required when run.eval_every is set")
	case c.Game.Prompts != PromptsSSP && c.Game.Prompts != PromptsSSPShort && c.Game.Prompts != PromptsMinimal:
		return bad("game.prompts", "must be %q, %q or %q, got %q", PromptsSSPShort, PromptsSSP, PromptsMinimal, c.Game.Prompts)
	case c.Game.Problems != ProblemsSelfPlay && c.Game.Problems != ProblemsQA:
		return bad("game.problems", "must be %q or %q, got %q", ProblemsSelfPlay, ProblemsQA, c.Game.Problems)
	case c.Game.Problems == ProblemsQA && !c.Game.TrainSolver:
		return bad("game.train_solver", "must be true when game.problems is %q (there is no proposer to train)", ProblemsQA)
	case !c.Game.TrainProposer && !c.Game.TrainSolver:
		return bad("game.train_solver", "game.train_proposer and game.train_solver are both false: nothing to train")
	case !(c.Optim.LR > 0):
		return bad("optim.lr", "must be positive, got %v", c.Optim.LR)
	case c.Optim.WeightDecay < 0:
		return bad("optim.weight_decay", "must not be negative, got %v", c.Optim.WeightDecay)
	case c.Optim.Beta1 < 0 || c.Optim.Beta1 >= 1:
		return bad("optim.beta1", "must be in [0, 1), got %v", c.Optim.Beta1)
	case c.Optim.Beta2 < 0 || c.Optim.Beta2 >= 1:
		return bad("optim.beta2", "must be in [0, 1), got %v", c.Optim.Beta2)
	case !(c.Optim.Eps > 0):
		return bad("optim.eps", "must be positive, got %v", c.Optim.Eps)
	case c.Optim.Schedule != "constant" && c.Optim.Schedule != "linear" && c.Optim.Schedule != "cosine":
		return bad("optim.schedule", "must be \"constant\", \"linear\" or \"cosine\", got %q", c.Optim.Schedule)
	case c.Optim.MaxGradNorm < 0:
		return bad("optim.max_grad_norm", "must not be negative (0 disables clipping), got %v", c.Optim.MaxGradNorm)
	case c.Optim.ClipLow <= 0 || c.Optim.ClipLow >= 1:
		return bad("optim.clip_low", "must be in (0, 1), got %v", c.Optim.ClipLow)
	case c.Optim.ClipHigh <= 0:
		return bad("optim.clip_high", "must be positive, got %v", c.Optim.ClipHigh)
	case c.Optim.DualClip != 0 && !(c.Optim.DualClip > 1):
		return bad("optim.dual_clip", "must be 0 (off) or above 1, got %v", c.Optim.DualClip)
	case c.Optim.KLCoef < 0:
		return bad("optim.kl_coef", "must not be negative, got %v", c.Optim.KLCoef)
	case !(c.Optim.KLClamp >= 0):
		return bad("optim.kl_clamp", "must not be negative (0 disables it), got %v", c.Optim.KLClamp)
	case !(c.Optim.AdvantageEps > 0):
		return bad("optim.advantage_eps", "must be positive, got %v", c.Optim.AdvantageEps)
	}
	if c.Optim.LoRA.Rank > 0 {
		l := c.Optim.LoRA
		lc := model.LoRAConfig{Rank: l.Rank, Alpha: l.Alpha, Dropout: l.Dropout, Targets: l.Targets.Names()}
		switch {
		case !(l.Alpha > 0):
			return bad("optim.lora.alpha", "must be positive, got %v", l.Alpha)
		case !(l.Dropout >= 0 && l.Dropout < 1):
			return bad("optim.lora.dropout", "must be in [0, 1), got %v", l.Dropout)
		}
		if err := lc.Validate(); err != nil {
			return bad("optim.lora.targets", "%v", err)
		}
	}
	return nil
}

// LoRA is the adapters' configuration, and false when optim.lora.rank is 0.
func (c Config) LoRA() (model.LoRAConfig, bool) {
	l := c.Optim.LoRA
	if l.Rank == 0 {
		return model.LoRAConfig{}, false
	}
	return model.LoRAConfig{Rank: l.Rank, Alpha: l.Alpha, Dropout: l.Dropout, Targets: l.Targets.Names()}, true
}

// Effective renders the configuration as YAML, for the run directory and
// --print-config.
func (c Config) Effective() string {
	data, err := yaml.Marshal(c)
	if err != nil {
		// Marshalling a struct of plain fields cannot fail.
		return fmt.Sprintf("# config: %v\n", err)
	}
	return string(data)
}

// OptimizerConfig is the learner's configuration for a run of run.steps
// steps.
func (c Config) OptimizerConfig() model.OptimizerConfig {
	o := c.Optim
	return model.OptimizerConfig{LR: o.LR, WeightDecay: o.WeightDecay, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps,
		WarmupSteps: o.WarmupSteps, TotalSteps: c.Run.Steps * c.OptimizerStepsPerStep(), Schedule: o.Schedule,
		MaxGradNorm: o.MaxGradNorm, MicroBatchSize: o.MicroBatchSize, ActivationCheckpointing: o.ActivationCheckpointing}
}

// UsesLoRA reports whether the run trains LoRA adapters (optim.lora.rank
// or run.adapter) rather than every weight.
func (c Config) UsesLoRA() bool { return c.Optim.LoRA.Rank > 0 || c.Run.Adapter != "" }

// LoadOptions are the model options of the policy: float32 weights when
// every weight is trained, run.frozen_dtype for the frozen base of a LoRA
// run.
func (c Config) LoadOptions() model.LoadOptions {
	chunk := c.Optim.LogProbChunkTokens
	if chunk == 0 {
		chunk = -1 // the whole sequence
	}
	dtype := "float32"
	if c.UsesLoRA() {
		dtype = c.Run.FrozenDType
	}
	return model.LoadOptions{Backend: c.Run.Backend, LogProbChunkTokens: chunk, DType: dtype, ComputeDType: c.Run.ComputeDType}
}

// ReferenceLoadOptions are the model options of the KL reference of full
// fine-tuning, which is never trained: run.frozen_dtype.
func (c Config) ReferenceLoadOptions() model.LoadOptions {
	o := c.LoadOptions()
	o.DType = c.Run.FrozenDType
	return o
}

// MemorySettings are the memory plan's settings for the model mc: a
// training sequence and a rollout's cache hold up to agent.max_prompt_tokens
// + agent.max_response_tokens tokens, and the largest rollout phase keeps
// the caches of every solver rollout of a step (game.batch_size ×
// game.proposer_rollouts × game.solver_rollouts sequences). lora is the
// adapters' configuration (nil: full fine-tuning).
func (c Config) MemorySettings(mc model.Config, lora *model.LoRAConfig) model.MemorySettings {
	seq := c.Agent.MaxPromptTokens + c.Agent.MaxResponseTokens
	rollouts := c.Game.BatchSize * c.Game.ProposerRollouts
	if c.Game.Problems == ProblemsQA {
		rollouts = c.Game.BatchSize
	}
	if c.Game.TrainSolver || c.Game.Problems == ProblemsQA {
		rollouts *= c.Game.SolverRollouts
	}
	return model.MemorySettings{Config: mc, LoRA: lora, FrozenDType: c.Run.FrozenDType, ComputeDType: c.Run.ComputeDType,
		KLReference: c.Optim.KLCoef > 0, MicroBatch: c.Optim.MicroBatchSize, SeqLen: seq,
		LogProbChunk: c.Optim.LogProbChunkTokens, ActivationCheckpointing: c.Optim.ActivationCheckpointing,
		RolloutSequences: rollouts, RolloutSlots: seq}
}

// OptimizerStepsPerStep is the number of optimizer steps one game step
// takes when every slot yields a question (an upper bound otherwise); it
// sets the length of decaying learning-rate schedules.
func (c Config) OptimizerStepsPerStep() int {
	proposer := c.Game.BatchSize * c.Game.ProposerRollouts
	solver := proposer * c.Game.SolverRollouts
	steps := func(n int) int { return min(n, c.Optim.MiniBatches) }
	if !c.Game.TrainProposer {
		proposer = 0
	}
	if !c.Game.TrainSolver {
		solver = 0
	}
	if c.Game.CombinedUpdate {
		return steps(proposer + solver)
	}
	return steps(proposer) + steps(solver)
}

// ConfigField describes one knob for help output and the reference docs.
type ConfigField struct {
	Path    string // YAML path, e.g. "game.batch_size"
	Type    string
	Default string
	Help    string
}

// ConfigFields lists every knob in declaration order with its default;
// a nested section (optim.lora) lists its keys under its path.
func ConfigFields() []ConfigField {
	var out []ConfigField
	var walk func(prefix string, sv reflect.Value)
	walk = func(prefix string, sv reflect.Value) {
		for j := 0; j < sv.NumField(); j++ {
			f := sv.Type().Field(j)
			v := sv.Field(j)
			path := prefix + "." + f.Tag.Get("yaml")
			if v.Kind() == reflect.Struct {
				walk(path, v)
				continue
			}
			dflt := fmt.Sprint(v.Interface())
			if v.Kind() == reflect.String {
				dflt = fmt.Sprintf("%q", v.String())
			}
			out = append(out, ConfigField{Path: path, Type: v.Kind().String(), Default: dflt, Help: f.Tag.Get("help")})
		}
	}
	def := reflect.ValueOf(DefaultConfig())
	for i := 0; i < def.NumField(); i++ {
		walk(def.Type().Field(i).Tag.Get("yaml"), def.Field(i))
	}
	return out
}

// ConfigReference renders docs/config.md from the fields' help text.
func ConfigReference() string {
	var b strings.Builder
	b.WriteString("# Self-play configuration reference\n\n")
	b.WriteString("<!-- Generated from internal/selfplay/config.go by `go test ./internal/selfplay -run TestConfigReference -update`; do not edit. -->\n\n")
	b.WriteString("`ssp train --config FILE.yaml` reads these keys over the defaults below; unknown keys are errors. ")
	b.WriteString("Command-line flags override the file. `ssp train --print-config` prints the effective configuration. ")
	b.WriteString("See [selfplay.md](selfplay.md) for how each knob maps to SSP.\n")
	section := ""
	for _, f := range ConfigFields() {
		s, _, _ := strings.Cut(f.Path, ".")
		if s != section {
			section = s
			fmt.Fprintf(&b, "\n## %s\n\n| key | type | default | meaning |\n|---|---|---|---|\n", s)
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", f.Path, f.Type, f.Default, strings.ReplaceAll(f.Help, "|", "\\|"))
	}
	return b.String()
}
