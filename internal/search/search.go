// Package search defines what the agent sees of a search engine: documents,
// ranked hits and the Searcher interface, implemented by the embedded BM25
// index (package index) and by a client of any Search-R1-compatible
// /retrieve server (this package's Client).
package search

import (
	"context"
	"strings"
)

// Document is one retrievable passage in the Search-R1 / FlashRAG layout:
// Contents holds the title in double quotes on the first line, then the text.
type Document struct {
	ID       string `json:"id"`
	Contents string `json:"contents"`
}

// Title returns the first line of Contents without its surrounding quotes.
func (d Document) Title() string {
	first, _, _ := strings.Cut(d.Contents, "\n")
	return strings.Trim(first, "\"")
}

// Text returns Contents after the title line (all of it if there is no title line).
func (d Document) Text() string {
	_, rest, found := strings.Cut(d.Contents, "\n")
	if !found {
		return d.Contents
	}
	return rest
}

// Hit is a document with its retrieval score; higher is better.
type Hit struct {
	Document Document `json:"document"`
	Score    float64  `json:"score"`
}

// Searcher answers a batch of queries with up to topK hits each, best first.
// The result has one slice per query, in query order.
type Searcher interface {
	Search(ctx context.Context, queries []string, topK int) ([][]Hit, error)
}
