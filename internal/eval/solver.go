package eval

import (
	"context"

	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/score"
	"github.com/ssp-project/ssp/internal/search"
	"github.com/ssp-project/ssp/internal/tokenizer"
)

// AgentSolver answers examples with the solver prompt and the agent loop,
// as in training: the same code path for `ssp eval --model` and the
// validation inside `ssp train` (and the probe of `ssp world bootstrap`).
func AgentSolver(gen agent.Generator, tok *tokenizer.Tokenizer, searcher search.Searcher,
	messages func(question string) (system, user string), cfg agent.Config) SolveFunc {
	return func(ctx context.Context, batch []dataset.Example) ([]Trajectory, error) {
		prompts := make([][]int32, len(batch))
		for i, ex := range batch {
			p, err := SolverPrompt(tok, messages, ex.Question)
			if err != nil {
				return nil, err
			}
			prompts[i] = p
		}
		trajs, err := agent.Run(ctx, gen, tok, searcher, prompts, cfg)
		if err != nil {
			return nil, err
		}
		out := make([]Trajectory, len(batch))
		for i, t := range trajs {
			// Only the model's own text counts: an <answer> tag inside a
			// retrieved document is not the model's answer.
			pred, _ := score.ExtractAnswer(t.Generated)
			out[i] = Trajectory{
				ID: batch[i].ID, Response: t.Response, Prediction: pred,
				Turns: t.Turns, Searches: len(t.Searches), Tokens: t.GeneratedTokens,
				FinishReason: finishReason(t.Finish),
			}
		}
		return out, nil
	}
}

// finishReason maps the agent loop's finish reasons to the report's
// failure categories.
func finishReason(f agent.FinishReason) string {
	switch f {
	case agent.FinishAnswer:
		return FinishAnswer
	case agent.FinishTurnLimit, agent.FinishTurnLength:
		return FinishTurnLimit
	case agent.FinishLength:
		return FinishLength
	case agent.FinishQuestion:
		return FinishFormatError // a solver that writes a question broke the protocol
	default:
		return FinishNoAnswer
	}
}

// SolverPrompt is the token ids the solver starts from for one question:
// the prompt set's messages rendered by the model's chat template.
func SolverPrompt(tok *tokenizer.Tokenizer, messages func(question string) (system, user string), question string) ([]int32, error) {
	system, user := messages(question)
	text, err := tok.SystemUserPrompt(system, user)
	if err != nil {
		return nil, err
	}
	return tok.Encode(text), nil
}
