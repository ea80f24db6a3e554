package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestScoreLines(t *testing.T) {
	in := `{"prediction":"The Paris","golden_answers":["paris"]}
{"prediction":"in Lyon, France","golden_answers":"Lyon"}
{"prediction":"x","golden_answers":[]}
`
	var out, sum bytes.Buffer
	if err := scoreLines(context.Background(), strings.NewReader(in), "in.jsonl", &out, &sum); err != nil {
		t.Fatal(err)
	}
	want := `{"em":1,"f1":1,"subem":1}
{"em":0,"f1":0.5,"subem":1}
{"em":0,"f1":0,"subem":0}
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if !strings.Contains(sum.String(), "n=3") {
		t.Errorf("summary %q", sum.String())
	}
}

func TestScoreLinesErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"golden_answers":["a"]}`, "in.jsonl:1: missing field \"prediction\""},
		{"{\"prediction\":\"a\",\"golden_answers\":[\"a\"]}\nnot json", "in.jsonl:2:"},
		{`{"prediction":"a","golden_answers":[1]}`, "golden_answers"},
		{`{"prediction":"a"}`, "golden_answers"},
	} {
		var out, sum bytes.Buffer
		err := scoreLines(context.Background(), strings.NewReader(tt.in), "in.jsonl", &out, &sum)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("input %q: err %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}
