package serve

import (
	"github.com/ssp-project/ssp/internal/agent"
)

// The answers' JSON: OpenAI's chat.completion and chat.completion.chunk
// objects, with this server's additions under "ssp".

type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   usage              `json:"usage"`
	SSP     *sspResult         `json:"ssp,omitempty"`
}

type completionChoice struct {
	Index        int             `json:"index"`
	Message      responseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
}

type responseMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ReasoningContent is the agent's trajectory: its thinking, searches
	// and the results it read, before the answer in Content.
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chunkBody struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
	// SSP is a search the agent just made ({"search": …}), or in the
	// last chunk the whole result, as in a non-streamed answer.
	SSP any `json:"ssp,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role             string  `json:"role,omitempty"`
	Content          *string `json:"content,omitempty"`
	ReasoningContent string  `json:"reasoning_content,omitempty"`
}

// sspResult is what an agent did: its searches with the documents it was
// shown, its whole trajectory, and how it ended.
type sspResult struct {
	Question       string       `json:"question,omitempty"`
	Searches       []searchJSON `json:"searches"`
	Trajectory     string       `json:"trajectory"`
	Finish         string       `json:"finish"` // the agent's: answer, turn_limit, length, no_tag, ...
	Turns          int          `json:"turns"`
	InsertedTokens int          `json:"inserted_tokens"`
}

type sspChunk struct {
	Search searchJSON `json:"search"`
}

type searchJSON struct {
	Query     string         `json:"query"`
	Documents []documentJSON `json:"documents"`
}

type documentJSON struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

func searchJSONOf(c agent.SearchCall) searchJSON {
	s := searchJSON{Query: c.Query, Documents: []documentJSON{}}
	for _, d := range c.Documents {
		s.Documents = append(s.Documents, documentJSON{ID: d.ID, Title: d.Title(), Text: d.Text()})
	}
	return s
}

func sspResultOf(question string, r *Result) *sspResult {
	out := &sspResult{Question: question, Searches: []searchJSON{}, Trajectory: r.Trajectory, Finish: string(r.AgentFinish), Turns: r.Turns, InsertedTokens: r.InsertedTokens}
	for _, c := range r.Searches {
		out.Searches = append(out.Searches, searchJSONOf(c))
	}
	return out
}

func usageOf(r *Result) usage {
	return usage{PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TotalTokens: r.PromptTokens + r.CompletionTokens}
}

func completionBody(call *chatCall, id string, created int64, r *Result) *completion {
	c := &completion{ID: id, Object: "chat.completion", Created: created, Model: call.name, Usage: usageOf(r),
		Choices: []completionChoice{{Message: responseMessage{Role: "assistant", Content: r.Content}, FinishReason: r.FinishReason}}}
	if call.req.Agent {
		c.Choices[0].Message.ReasoningContent = r.Trajectory
		c.SSP = sspResultOf(call.req.Question, r)
	}
	return c
}
