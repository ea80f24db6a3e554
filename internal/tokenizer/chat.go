package tokenizer

import (
	"errors"
	"strings"
)

// ApplyChatTemplate renders messages the way the tokenizer's chat_template
// does. Rather than interpreting Jinja, ssp recognises the two template
// families its models use and renders them exactly: ChatML (Qwen2.5, Qwen3,
// SmolLM2 and the world tokenizers) and Llama 3. Golden tests compare with
// the real templates rendered by jinja2.
func (t *Tokenizer) ApplyChatTemplate(messages []Message, addGenerationPrompt bool) (string, error) {
	switch {
	case t.template == "":
		return "", errors.New("tokenizer has no chat_template (tokenizer_config.json)")
	case strings.Contains(t.template, "<|im_start|>"):
		return renderChatML(messages, addGenerationPrompt), nil
	case strings.Contains(t.template, "<|start_header_id|>"):
		return renderLlama3(messages, addGenerationPrompt), nil
	}
	return "", errors.New("chat_template is neither ChatML nor Llama 3; only those two families are supported")
}

// SystemUserPrompt renders one system and one user message followed by the
// assistant's generation prompt: the start of every rollout of the game
// (solver, proposer and RAG check), of evaluation and of the bootstrap's
// episodes, so that they all see the same text for the same messages.
func (t *Tokenizer) SystemUserPrompt(system, user string) (string, error) {
	return t.ApplyChatTemplate([]Message{{Role: "system", Content: system}, {Role: "user", Content: user}}, true)
}

// renderChatML writes <|im_start|>role\ncontent<|im_end|>\n per message. Like
// Qwen3's template, assistant turns before the last user message keep only
// the text after their reasoning (</think>).
func renderChatML(messages []Message, addGenerationPrompt bool) string {
	lastUser := -1
	for i, m := range messages {
		if m.Role == "user" {
			lastUser = i
		}
	}
	var b strings.Builder
	for i, m := range messages {
		content := m.Content
		if m.Role == "assistant" && i < lastUser {
			if k := strings.LastIndex(content, "</think>"); k >= 0 {
				content = strings.TrimLeft(content[k+len("</think>"):], "\n")
			}
		}
		b.WriteString("<|im_start|>" + m.Role + "\n" + content + "<|im_end|>\n")
	}
	if addGenerationPrompt {
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String()
}

// renderLlama3 writes Llama 3's header/eot layout with trimmed contents.
func renderLlama3(messages []Message, addGenerationPrompt bool) string {
	var b strings.Builder
	b.WriteString("<|begin_of_text|>")
	for _, m := range messages {
		b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + strings.TrimSpace(m.Content) + "<|eot_id|>")
	}
	if addGenerationPrompt {
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
	return b.String()
}
