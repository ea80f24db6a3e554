package dataset

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ssp-project/ssp/internal/fixtures"
)

func TestReadFanOutQA(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev.json")
	os.WriteFile(p, []byte(`[
 {"id":"a1","question":"Q1?","answer":"Paris","decomposition":[{},{}]},
 {"id":"a2","question":"Q2?","answer":42.5},
 {"id":"a3","question":"Q3?","answer":{"b":["x",1],"a":"y"}}]`), 0o644)
	got, err := ReadFanOutQA(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"Paris"}, {"42.5"}, {"y", "x", "1"}}
	for i, e := range got {
		if !reflect.DeepEqual(e.GoldenAnswers, want[i]) {
			t.Errorf("%s: golds %q, want %q", e.ID, e.GoldenAnswers, want[i])
		}
	}
	os.WriteFile(p, []byte(`[{"id":"a1","question":"Q1?","answer":[]}]`), 0o644)
	if _, err := ReadFanOutQA(context.Background(), p); err == nil {
		t.Fatal("empty answer accepted")
	}
}

// TestReadFanOutQADev reads the real dev set when scripts/fetch_fanoutqa.sh
// has placed it under .assets.
func TestReadFanOutQADev(t *testing.T) {
	p := fixtures.Asset(t, "scripts/fetch_fanoutqa.sh", "fanoutqa", "fanout-final-dev.json")
	got, err := ReadFanOutQA(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 100 {
		t.Fatalf("only %d questions", len(got))
	}
}
