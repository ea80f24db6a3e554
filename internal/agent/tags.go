package agent

import "strings"

// The agent protocol wraps each action in an XML-like tag pair:
// <search>query</search>, <answer>text</answer>, <question>text</question>.
// Model output is untrusted text: the parsers below accept anything, never
// panic, and only report a body when both the opening and the closing tag
// are present in the right order.

// LastTagBody returns the trimmed body of the last complete <tag>…</tag>
// pair in text: the last closing tag that has an opening tag before it, with
// the nearest such opening tag (so nested or repeated openings yield the
// innermost body).
func LastTagBody(text, tag string) (string, bool) {
	open, close := "<"+tag+">", "</"+tag+">"
	rest := text
	for {
		end := strings.LastIndex(rest, close)
		if end < 0 {
			return "", false
		}
		rest = rest[:end]
		start := strings.LastIndex(rest, open)
		if start < 0 {
			return "", false
		}
		body := rest[start+len(open):]
		if !strings.Contains(body, close) {
			return strings.TrimSpace(body), true
		}
	}
}

// FirstTagBody returns the trimmed body of the first complete <tag>…</tag>
// pair in text: the first opening tag and the first closing tag after it.
func FirstTagBody(text, tag string) (string, bool) {
	open, close := "<"+tag+">", "</"+tag+">"
	start := strings.Index(text, open)
	if start < 0 {
		return "", false
	}
	body := text[start+len(open):]
	end := strings.Index(body, close)
	if end < 0 {
		return "", false
	}
	return strings.TrimSpace(body[:end]), true
}
