// Command oraclecheck serves an OpenAI-compatible chat endpoint that answers
// self-play's RAG check from the facts of a generated world instead of from
// a model: the check as it would be if it were never wrong. It measures how
// much of what self-play fails to learn on the built-in world comes from a
// RAG check that lets wrong questions through (docs/experiments.md).
// Self-play with it is no longer label-free: the world's facts decide which
// questions count. It is a diagnostic, never part of `ssp train`'s recipe.
//
//	go run ./scripts/oraclecheck --world WORLD --addr 127.0.0.1:8931 &
//	ssp train ... --verify.rag_answerer judge --verify.judge_url http://127.0.0.1:8931 --verify.judge_model oracle
//
// A RAG prompt (its user message ends with "Question: …") is answered with
// the entity the question's chain ends at by the world's facts
// (world.Graph.Resolve), provided one of its names shows in the prompt's
// documents, so the question must also be answerable from what the proposer
// retrieved, and its chain has at least --min-links relations (1 by
// default). A question outside the world's wordings, one whose chain
// breaks, or one whose answer no document names is answered "unknown",
// which matches no target. A grading prompt (the judge's question whether
// an answer means a gold one, asked when exact match fails) is answered
// "Incorrect", so rewards stay exact match, as without a judge.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/ssp-project/ssp/internal/world"
)

func main() {
	worldDir := flag.String("world", "", "world directory written by `ssp world gen` (its world.json regenerates the facts)")
	addr := flag.String("addr", "127.0.0.1:8931", "address to listen on")
	minLinks := flag.Int("min-links", 1, "answer \"unknown\" to questions of fewer relations than this, so only right questions at least this long count")
	flag.Parse()
	if *worldDir == "" {
		fmt.Fprintln(os.Stderr, "oraclecheck: --world is required")
		os.Exit(2)
	}
	if *minLinks < 1 {
		fmt.Fprintf(os.Stderr, "oraclecheck: --min-links must be at least 1, got %d\n", *minLinks)
		os.Exit(2)
	}
	g, err := world.Load(*worldDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "oraclecheck: --world %s: %v\n", *worldDir, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "oraclecheck: --addr %s: %v\n", *addr, err)
		os.Exit(1)
	}
	log.Printf("oraclecheck: answering RAG checks from %s on http://%s", *worldDir, ln.Addr())
	log.Fatal(http.Serve(ln, newHandler(g, *minLinks)))
}

// oracle answers chat requests from a world's facts.
type oracle struct {
	g        *world.Graph
	minLinks int
}

func newHandler(g *world.Graph, minLinks int) http.Handler {
	o := &oracle{g: g, minLinks: minLinks}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", o.chat)
	return mux
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func (o *oracle) chat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []chatMessage `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "oraclecheck: decoding request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var user string
	for _, m := range req.Messages {
		if m.Role == "user" {
			user = m.Content
		}
	}
	if user == "" {
		http.Error(w, "oraclecheck: the request has no user message", http.StatusBadRequest)
		return
	}
	reply := o.reply(user)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"choices": []map[string]any{{"index": 0, "message": chatMessage{Role: "assistant", Content: reply}, "finish_reason": "stop"}},
	})
}

// reply answers one user message: a grading prompt with "Incorrect", a RAG
// prompt with the answer the world's facts give, or "unknown".
func (o *oracle) reply(user string) string {
	if strings.HasPrefix(user, "You are grading an answer") {
		return "Incorrect"
	}
	docs, question, ok := cutLast(user, "Question:")
	if !ok {
		return "<answer> unknown </answer>"
	}
	question, _, _ = strings.Cut(strings.TrimSpace(question), "\n")
	if name, ok := answerShown(o.g, question, docs, o.minLinks); ok {
		return "<answer> " + name + " </answer>"
	}
	return "<answer> unknown </answer>"
}

// answerShown is the name under which the entity the question's chain ends
// at, by the world's facts, shows in docs; ok is false when the question
// is not in the world's wordings, its chain breaks or has fewer than
// minLinks relations, or no document names the answer.
func answerShown(g *world.Graph, question, docs string, minLinks int) (string, bool) {
	end, links, ok := g.Resolve(question)
	if !ok || end == nil || links < minLinks {
		return "", false
	}
	for _, name := range end.Answers() {
		if strings.Contains(docs, name) {
			return name, true
		}
	}
	return "", false
}

// cutLast splits s around the last occurrence of sep.
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
