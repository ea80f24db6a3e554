package dataset

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadSearchR1Parquet(t *testing.T) {
	got, err := ReadSearchR1(context.Background(), "testdata/searchr1_sample.parquet")
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{ID: "nq-test_0", Question: "who wrote the iliad?", GoldenAnswers: []string{"Homer"}, DataSource: "nq"},
		{ID: "hotpotqa-test_1", Question: "what is the capital of france?", GoldenAnswers: []string{"Paris", "Paris, France"}, DataSource: "hotpotqa"},
		{ID: "triviaqa-2", Question: "how many legs does a spider have?", GoldenAnswers: []string{"8", "eight"}, DataSource: "triviaqa"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestReadSearchR1JSONL(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		want       []string
		wantErr    string
	}{
		{"list", `{"id":"a","question":"q","golden_answers":["x","y"],"data_source":"nq"}`, []string{"x", "y"}, ""},
		{"target string", `{"id":7,"question":"q","data_source":"nq","reward_model":{"ground_truth":{"target":"z"}}}`, []string{"z"}, ""},
		{"target list", `{"question":"q","data_source":"nq","reward_model":{"ground_truth":{"target":["z","w"]}}}`, []string{"z", "w"}, ""},
		{"no answers", `{"id":"a","question":"q","data_source":"nq"}`, nil, ":1: no answers"},
		{"no question", `{"id":"a","golden_answers":["x"],"data_source":"nq"}`, nil, "field question"},
		{"bad json", "\n{", nil, ":2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
			os.WriteFile(p, []byte(tc.body+"\n"), 0o644)
			got, err := ReadSearchR1(context.Background(), p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0].GoldenAnswers, tc.want) {
				t.Fatalf("got %+v, want golds %v", got, tc.want)
			}
		})
	}
}

func TestJSONLRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.jsonl")
	in := []Example{{ID: "1", Question: "q?", GoldenAnswers: []string{"a"}, DataSource: "s", Hops: 2, Metadata: map[string]any{"k": "v"}}}
	if err := WriteJSONL(p, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadJSONL(context.Background(), p)
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	if err := WriteJSONL(p, []Example{{ID: "1"}}); err == nil {
		t.Fatal("invalid example written")
	}
	if again, _ := ReadJSONL(context.Background(), p); !reflect.DeepEqual(again, in) {
		t.Fatal("failed write clobbered the file")
	}
}
