package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"

	"github.com/ssp-project/ssp/internal/tokenizer"
)

// apiError is an error answer in OpenAI's shape:
// {"error": {"message", "type", "param", "code"}}.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

// invalid is a 400 answer about one request field (param "" for none).
func invalid(param, format string, args ...any) *apiError {
	e := &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	return e
}

// withCode sets the error's code.
func (e *apiError) withCode(code string) *apiError {
	e.Code = &code
	return e
}

// chatRequest is the body of POST /v1/chat/completions. Fields that this
// server does not know are ignored, as OpenAI's clients send many.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Agent         *bool         `json:"agent"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	Seed                *int64          `json:"seed"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	N                   *int            `json:"n"`
	IgnoreEOS           bool            `json:"ignore_eos"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	Logprobs            *bool           `json:"logprobs"`
	Tools               json.RawMessage `json:"tools"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// chatCall is a checked chat request, ready to submit.
type chatCall struct {
	model        *Model
	name         string // the model name asked for, echoed in answers
	stream       bool
	includeUsage bool
	req          Request
}

// maxStops is the most stop strings a request may give, as OpenAI allows.
const maxStops = 4

// parseChat reads and checks a chat completion request.
func (s *Server) parseChat(body []byte) (*chatCall, *apiError) {
	var cr chatRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&cr); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return nil, invalid(typeErr.Field, "field %q: got JSON %s, want %s", typeErr.Field, typeErr.Value, typeErr.Type)
		case errors.As(err, &typeErr):
			return nil, invalid("", "body: got JSON %s, want an object", typeErr.Value)
		case errors.Is(err, io.EOF):
			return nil, invalid("", "body: empty, want a JSON object with \"model\" and \"messages\"")
		}
		return nil, invalid("", "body: invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("", "body: unexpected data after the JSON object")
	}

	call := &chatCall{name: cr.Model, stream: cr.Stream}
	if cr.StreamOptions != nil {
		if !cr.Stream {
			return nil, invalid("stream_options", "stream_options: only allowed with \"stream\": true")
		}
		call.includeUsage = cr.StreamOptions.IncludeUsage
	}
	m, agentMode, apiErr := s.lookupModel(cr.Model)
	if apiErr != nil {
		return nil, apiErr
	}
	if cr.Agent != nil {
		if !*cr.Agent && agentMode {
			return nil, invalid("agent", "agent: false contradicts model %q, which names an agent", cr.Model)
		}
		agentMode = agentMode || *cr.Agent
	}
	call.model = m
	call.req.Agent = agentMode

	switch {
	case cr.N != nil && *cr.N != 1:
		return nil, invalid("n", "n: %d; this server returns one choice per request", *cr.N)
	case cr.PresencePenalty != nil && *cr.PresencePenalty != 0:
		return nil, invalid("presence_penalty", "presence_penalty: not supported by this server")
	case cr.FrequencyPenalty != nil && *cr.FrequencyPenalty != 0:
		return nil, invalid("frequency_penalty", "frequency_penalty: not supported by this server")
	case cr.Logprobs != nil && *cr.Logprobs:
		return nil, invalid("logprobs", "logprobs: not supported by this server")
	case len(cr.Tools) > 0 && string(cr.Tools) != "null" && string(cr.Tools) != "[]":
		return nil, invalid("tools", "tools: not supported; the agent models (%q) search on their own", m.Name()+AgentSuffix)
	case cr.ResponseFormat != nil && cr.ResponseFormat.Type != "" && cr.ResponseFormat.Type != "text":
		return nil, invalid("response_format", "response_format: type %q not supported (only \"text\")", cr.ResponseFormat.Type)
	}

	if apiErr := parseSampling(&cr, agentMode, m, &call.req.Sampling); apiErr != nil {
		return nil, apiErr
	}
	messages, apiErr := parseMessages(cr.Messages)
	if apiErr != nil {
		return nil, apiErr
	}
	maxTokens := cr.MaxCompletionTokens
	maxParam := "max_completion_tokens"
	if maxTokens == nil {
		maxTokens, maxParam = cr.MaxTokens, "max_tokens"
	}
	if maxTokens != nil && *maxTokens < 1 {
		return nil, invalid(maxParam, "%s: %d, want at least 1", maxParam, *maxTokens)
	}

	if agentMode {
		last := messages[len(messages)-1]
		switch {
		case last.Role != "user":
			return nil, invalid("messages", "messages: the agent answers the last message, which must be the user's question (got role %q)", last.Role)
		case strings.TrimSpace(last.Content) == "":
			return nil, invalid("messages", "messages: the user's question is empty")
		case len(cr.Stop) > 0 && string(cr.Stop) != "null":
			return nil, invalid("stop", "stop: not supported in agent mode; the agent stops at its answer")
		case cr.IgnoreEOS:
			return nil, invalid("ignore_eos", "ignore_eos: not supported in agent mode")
		}
		call.req.Question = strings.TrimSpace(last.Content)
		if maxTokens != nil {
			if *maxTokens > m.AgentResponseTokens() {
				return nil, invalid(maxParam, "%s: %d is more than this server's agent response budget of %d tokens (ssp serve --agent.max_response_tokens)",
					maxParam, *maxTokens, m.AgentResponseTokens())
			}
			call.req.MaxTokens = *maxTokens
		}
		return call, nil
	}

	stops, apiErr := parseStop(cr.Stop)
	if apiErr != nil {
		return nil, apiErr
	}
	call.req.Stop = stops
	call.req.IgnoreEOS = cr.IgnoreEOS
	text, err := m.Tokenizer().ApplyChatTemplate(messages, true)
	if err != nil {
		return nil, &apiError{status: http.StatusInternalServerError, Message: "model " + m.Name() + ": " + err.Error(), Type: "server_error"}
	}
	call.req.Prompt = m.Tokenizer().Encode(text)
	promptLen := len(call.req.Prompt)
	contextRoom := math.MaxInt
	if m.cfg.MaxContext > 0 {
		contextRoom = m.cfg.MaxContext - promptLen
		if contextRoom < 1 {
			return nil, invalid("messages", "messages: %d prompt tokens fill the model's context of %d tokens", promptLen, m.cfg.MaxContext).
				withCode("context_length_exceeded")
		}
	}
	switch {
	case maxTokens == nil:
		call.req.MaxTokens = min(s.cfg.DefaultMaxTokens, s.cfg.MaxTokens, contextRoom)
	case *maxTokens > contextRoom:
		return nil, invalid(maxParam, "%s: %d prompt tokens and %d new ones exceed the model's context of %d tokens",
			maxParam, promptLen, *maxTokens, m.cfg.MaxContext).withCode("context_length_exceeded")
	case *maxTokens > s.cfg.MaxTokens:
		return nil, invalid(maxParam, "%s: %d is more than this server allows (%d, ssp serve --max-tokens)", maxParam, *maxTokens, s.cfg.MaxTokens)
	default:
		call.req.MaxTokens = *maxTokens
	}
	return call, nil
}

// lookupModel finds a served model by its name or its agent's name.
func (s *Server) lookupModel(name string) (*Model, bool, *apiError) {
	if name == "" {
		return nil, false, invalid("model", "model: missing; this server has %s", strings.Join(s.modelIDs(), ", "))
	}
	agentMode := false
	base := name
	if b, ok := strings.CutSuffix(name, AgentSuffix); ok {
		base, agentMode = b, true
	}
	m := s.models[base]
	if m == nil {
		e := &apiError{status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("model %q does not exist; this server has %s", name, strings.Join(s.modelIDs(), ", "))}
		param := "model"
		e.Param = &param
		return nil, false, e.withCode("model_not_found")
	}
	return m, agentMode, nil
}

// parseSampling fills the request's sampling settings. A chat completion
// samples at temperature 1 unless told otherwise, as OpenAI's API does; an
// agent decodes greedily unless told otherwise, as `ssp eval` does.
func parseSampling(cr *chatRequest, agentMode bool, m *Model, s *Sampling) *apiError {
	s.Temperature = 1
	if agentMode {
		s.Temperature = m.cfg.Agent.Temperature
	}
	if t := cr.Temperature; t != nil {
		if *t < 0 || *t > 2 {
			return invalid("temperature", "temperature: %g, want 0 to 2", *t)
		}
		s.Temperature = float32(*t)
	}
	if p := cr.TopP; p != nil {
		if *p <= 0 || *p > 1 {
			return invalid("top_p", "top_p: %g, want more than 0 and at most 1", *p)
		}
		s.TopP = float32(*p)
	}
	if k := cr.TopK; k != nil {
		if *k < 0 {
			return invalid("top_k", "top_k: %d, want 0 (off) or more", *k)
		}
		s.TopK = *k
	}
	if cr.Seed != nil {
		s.Seed = *cr.Seed
	} else {
		s.Seed = rand.Int64()
	}
	return nil
}

// parseMessages turns the request's messages into the chat template's.
// Content is a string or a list of text parts; "developer" is OpenAI's
// newer name for "system".
func parseMessages(raw []chatMessage) ([]tokenizer.Message, *apiError) {
	if len(raw) == 0 {
		return nil, invalid("messages", "messages: missing or empty, want at least one message")
	}
	out := make([]tokenizer.Message, len(raw))
	for i, m := range raw {
		role := m.Role
		switch role {
		case "system", "user", "assistant":
		case "developer":
			role = "system"
		case "":
			return nil, invalid(fmt.Sprintf("messages[%d].role", i), "messages[%d].role: missing", i)
		default:
			return nil, invalid(fmt.Sprintf("messages[%d].role", i), "messages[%d].role: %q not supported (system, developer, user or assistant)", i, m.Role)
		}
		text, err := messageText(m.Content)
		if err != nil {
			return nil, invalid(fmt.Sprintf("messages[%d].content", i), "messages[%d].content: %v", i, err)
		}
		out[i] = tokenizer.Message{Role: role, Content: text}
	}
	return out, nil
}

func messageText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New("missing, want a string or a list of text parts")
	}
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return text, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("want a string or a list of text parts")
	}
	var b strings.Builder
	for k, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", fmt.Errorf("part %d: type %q not supported (only text parts with a \"text\" field)", k, p.Type)
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}

// parseStop reads "stop": null, a string, or a list of up to maxStops
// non-empty strings.
func parseStop(raw json.RawMessage) ([]string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, invalid("stop", "stop: empty string")
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, invalid("stop", "stop: want a string or a list of strings")
	}
	if len(many) > maxStops {
		return nil, invalid("stop", "stop: %d strings, at most %d allowed", len(many), maxStops)
	}
	if slices.Contains(many, "") {
		return nil, invalid("stop", "stop: empty string")
	}
	return many, nil
}
