package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/ssp-project/ssp/internal/tokenizer"
)

func init() {
	register(command{name: "tokenize", summary: "encode JSONL {\"text\"} to {\"ids\"} (or back with --decode)", run: runTokenize})
}

func runTokenize(ctx context.Context, args []string) error {
	fs := newFlags("tokenize", "--tokenizer DIR [--decode] < in.jsonl > out.jsonl")
	dir := fs.String("tokenizer", "", "directory holding tokenizer.json (a model directory works)")
	decode := fs.Bool("decode", false, "read {\"ids\"} lines and write {\"text\"} lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: --tokenizer is required", errUsage)
	}
	tok, err := tokenizer.Load(*dir)
	if err != nil {
		return err
	}
	return tokenizeLines(ctx, tok, *decode, os.Stdin, os.Stdout)
}

func tokenizeLines(ctx context.Context, tok *tokenizer.Tokenizer, decode bool, r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	out := bufio.NewWriter(w)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for line := 1; sc.Scan(); line++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		if decode {
			var in struct {
				IDs *[]int32 `json:"ids"`
			}
			if err := json.Unmarshal(sc.Bytes(), &in); err != nil || in.IDs == nil {
				return fmt.Errorf("stdin line %d: want {\"ids\": [int, ...]}", line)
			}
			enc.Encode(map[string]string{"text": tok.Decode(*in.IDs)})
			continue
		}
		var in struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil || in.Text == nil {
			return fmt.Errorf("stdin line %d: want {\"text\": string}", line)
		}
		ids := tok.Encode(*in.Text)
		if ids == nil {
			ids = []int32{}
		}
		enc.Encode(map[string][]int32{"ids": ids})
	}
	return sc.Err()
}
