package model

// The data contracts between the policy model and its users (the agent loop,
// the self-play trainer, the evaluator). Token ids in, token ids out: callers
// never re-tokenise text between turns.

// GenerateRequest asks for one continuation per prompt.
type GenerateRequest struct {
	// Prompts are unpadded token id sequences of any lengths; the engine pads
	// them on the left and buckets shapes itself.
	Prompts [][]int32
	// MaxNewTokens bounds each continuation.
	MaxNewTokens int
	// Temperature <= 0 means greedy decoding.
	Temperature float32
	// TopP in (0,1] keeps the smallest set of tokens whose probability mass
	// reaches TopP; 0 or 1 disables it.
	TopP float32
	// TopK > 0 keeps the K most probable tokens; 0 disables it.
	TopK int
	// Seed makes sampling reproducible.
	Seed int64
	// StopStrings finish a sequence as soon as its decoded new text contains
	// one of them (the stop string stays in the output). Decode is required
	// when StopStrings is set.
	StopStrings []string
	Decode      func(ids []int32) string
	// EOSTokenIDs finish a sequence when generated (the EOS token is kept).
	EOSTokenIDs []int32
	// OnToken, when set, is called with each token as soon as it is
	// sampled, in order within each prompt (prompt indexes Prompts), from
	// the goroutine that called Generate: for streaming text and progress.
	OnToken func(prompt int, token int32)
	// Rows, when set, holds one entry per prompt that replaces the
	// request's sampling settings for that prompt: a server batches the
	// requests of several clients, each with its own settings, and a
	// client that leaves stops its row without stopping the batch.
	Rows []RowSettings
}

// RowSettings are one prompt's own settings in a batched request.
type RowSettings struct {
	// Temperature, TopP, TopK and Seed replace the request's. The row
	// samples from the stream the request's first prompt would use with
	// this seed, so its tokens do not depend on its place in the batch.
	Temperature float32
	TopP        float32
	TopK        int
	Seed        int64
	// MaxNewTokens, when positive, bounds this row below the request's
	// MaxNewTokens, which sizes the batch's cache.
	MaxNewTokens int
	// StopStrings finish this row, as well as the request's.
	StopStrings []string
	// Cancelled, when set, is polled before every step: once it reports
	// true the row takes no more tokens and finishes with
	// FinishCancelled.
	Cancelled func() bool
}

// Generation is one finished continuation.
type Generation struct {
	Tokens []int32 // new tokens only
	// LogProbs[i] is log p(Tokens[i] | prefix) under the model's
	// distribution at the sampling temperature, softmax(logits/T), before
	// top-p/top-k: the PPO "old" log-probs, which TokenLogProbs and the
	// training step reproduce given the same temperature. Greedy decoding
	// (T <= 0) reports the distribution at T = 1.
	LogProbs     []float32
	FinishReason string // "stop" (stop string), "eos", "length", or "cancelled" (RowSettings.Cancelled)
}

// PolicyBatch is a batch of trajectories for one policy-gradient update.
// All per-token slices have the length of the matching sequence; entry t
// refers to token t (predicted from tokens < t), entry 0 is never trained.
type PolicyBatch struct {
	Sequences   [][]int32
	LossMask    [][]float32 // 1 for tokens the policy generated, 0 for prompt and inserted tool output
	Advantages  [][]float32
	OldLogProbs [][]float32 // log-probs under the policy that sampled the rollouts
	RefLogProbs [][]float32 // log-probs under the frozen initial policy; nil when KLCoef == 0
	// Temperatures gives each sequence the temperature it was sampled at;
	// the step's log-probs are those of softmax(logits/T), as the old and
	// reference log-probs must be (verl divides the logits by the rollout
	// temperature in all three). Nil, or T <= 0 (greedy), means T = 1.
	Temperatures []float32
}

// PolicyLossConfig holds the PPO-clip surrogate's knobs.
type PolicyLossConfig struct {
	ClipLow  float32 // ratio lower clip is 1-ClipLow (SSP: 0.2)
	ClipHigh float32 // ratio upper clip is 1+ClipHigh (SSP: 0.28)
	// DualClip > 1 bounds the loss of a token with a negative advantage A
	// by −DualClip·A (dual-clip PPO, verl's clip_ratio_c = 3); 0 disables.
	DualClip float32
	KLCoef   float32 // weight of the k3 KL estimate to the reference policy (SSP: 0.01)
	// KLClamp > 0 clamps each token's k3 estimate to ±KLClamp (verl: 10);
	// 0 disables.
	KLClamp float32
}

// StepStats reports one optimizer step.
type StepStats struct {
	Loss         float64 // total loss that was minimised
	PolicyLoss   float64 // PPO surrogate part (token mean over the loss mask)
	KL           float64 // mean k3 KL estimate over the loss mask
	Entropy      float64 // mean token entropy over the loss mask
	ClipFraction float64 // fraction of masked tokens whose ratio was clipped
	GradNorm     float64 // global gradient norm before clipping
	LR           float64 // learning rate used for this step
	Tokens       int     // masked tokens trained on
	// Skipped counts optimizer steps taken without running the model
	// because their gradient was exactly zero (Trainer.ZeroGradientStep).
	Skipped int
}
