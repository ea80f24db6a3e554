package dataset

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestExpandQuizField(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"Sukhumi", []string{"Sukhumi"}, false},
		{"Vienna|Wien", []string{"Vienna", "Wien"}, false},
		{"Brussel{s}|Bruxelles", []string{"Brussel", "Brussels", "Bruxelles"}, false},
		{"Andorra la V[ell|iej]a", []string{"Andorra la Vella", "Andorra la Vieja"}, false},
		{"{G{eorge} }Washington", []string{"Washington", "G Washington", "George Washington"}, false},
		{`a\|b`, []string{"a|b"}, false},
		{"a{b", nil, true},
		{"a]b", nil, true},
	} {
		got, err := ExpandQuizField(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ExpandQuizField(%q) = %q, %v; want %q, err=%v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestReadBSDQuiz(t *testing.T) {
	ctx := context.Background()
	cats, err := QuizCategories("testdata/bsdquiz/index", "testdata/bsdquiz/europe")
	if err != nil || !reflect.DeepEqual(cats, []string{"European", "capital"}) {
		t.Fatalf("categories = %q, %v", cats, err)
	}
	ex, err := ReadBSDQuiz(ctx, "testdata/bsdquiz/europe", cats)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 12 {
		t.Fatalf("got %d examples, want 12", len(ex))
	}
	if got := ex[4]; got.Question != `In the "europe" quiz, the European is "Austria". What is the capital?` ||
		!reflect.DeepEqual(got.GoldenAnswers, []string{"Vienna", "Wien"}) {
		t.Fatalf("example 4 = %+v", got)
	}
	// pres has backslash continuations and four fields per record.
	pres, err := ReadBSDQuiz(ctx, "testdata/bsdquiz/pres", nil)
	if err != nil {
		t.Fatal(err)
	}
	var madison bool
	for _, e := range pres {
		if strings.Contains(e.Question, `"Thomas Jefferson"`) && strings.Contains(e.Question, "field 4") {
			madison = reflect.DeepEqual(e.GoldenAnswers, []string{"Madison", "J Madison", "James Madison"})
		}
	}
	if !madison {
		t.Fatalf("continuation line not joined: %+v", pres)
	}
}

func FuzzExpandQuizField(f *testing.F) {
	for _, s := range []string{"a|b", "{G{eorge} }W", "[a|b]c", `x\`, "{{{", "]]", "K[o|o/|/o]benhavn"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ExpandQuizField(s)
		if err == nil && len(got) > maxAliases {
			t.Fatalf("%d aliases > %d", len(got), maxAliases)
		}
		splitQuizFields(s)
	})
}
