package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/tokenizer"

	"github.com/ssp-project/ssp/internal/fixtures"
)

func TestTokenizeLines(t *testing.T) {
	dir := fixtures.Shared(t, "tokenizers", "qwen3")
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tokenizeLines(context.Background(), tok, false, strings.NewReader(`{"text":"Hello world"}`+"\n"), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != `{"ids":[9707,1879]}`+"\n" {
		t.Errorf("encode: %q", out.String())
	}
	out.Reset()
	if err := tokenizeLines(context.Background(), tok, true, strings.NewReader(`{"ids":[9707,1879]}`), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != `{"text":"Hello world"}`+"\n" {
		t.Errorf("decode: %q", out.String())
	}
	err = tokenizeLines(context.Background(), tok, false, strings.NewReader("{\"text\":\"a\"}\n{\"txt\":1}"), &out)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line error: %v", err)
	}
}
