package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/dataset"
)

func init() {
	register(command{name: "data import", summary: "convert QA data (Search-R1, bsdgames quiz, FanOutQA) to eval JSONL", run: runDataImport})
}

// repeatedFlag collects every value of a flag given several times.
type repeatedFlag []string

func (r *repeatedFlag) String() string     { return strings.Join(*r, ",") }
func (r *repeatedFlag) Set(v string) error { *r = append(*r, v); return nil }
func (r *repeatedFlag) Type() string       { return "strings" }

// parseFlagsAndFiles parses flags that may come before, between or after
// positional arguments, and returns the positional ones.
func parseFlagsAndFiles(fs *pflag.FlagSet, args []string) ([]string, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

var dataFormats = []string{"jsonl", "searchr1", "bsdgames", "fanoutqa"}

func runDataImport(ctx context.Context, args []string) error {
	fs := newFlags("data import", "--format searchr1|bsdgames|fanoutqa|jsonl FILE... --out F.jsonl")
	format := fs.String("format", "", "input format: "+strings.Join(dataFormats, ", "))
	out := fs.String("out", "", "output JSONL file (written atomically)")
	quizIndex := fs.String("quiz-index", "", "bsdgames quiz index file naming the fields (default: 'index' beside each quiz file, if present)")
	files, err := parseFlagsAndFiles(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *out == "":
		return fmt.Errorf("%w: --out is required", errUsage)
	case len(files) == 0:
		return fmt.Errorf("%w: no input files", errUsage)
	}
	for _, f := range files {
		if sameFile(f, *out) {
			return fmt.Errorf("%w: --out %s is also an input file; write the converted data to another path", errUsage, *out)
		}
	}
	var all []dataset.Example
	for _, f := range files {
		var ex []dataset.Example
		var err error
		switch *format {
		case "jsonl":
			ex, err = dataset.ReadJSONL(ctx, f)
		case "searchr1":
			ex, err = dataset.ReadSearchR1(ctx, f)
		case "fanoutqa":
			ex, err = dataset.ReadFanOutQA(ctx, f)
		case "bsdgames":
			idx := *quizIndex
			if idx == "" {
				idx = filepath.Join(filepath.Dir(f), "index")
			}
			var cats []string
			if _, statErr := os.Stat(idx); statErr == nil {
				if cats, err = dataset.QuizCategories(idx, f); err != nil {
					return err
				}
			}
			ex, err = dataset.ReadBSDQuiz(ctx, f, cats)
		default:
			return fmt.Errorf("%w: --format %q: want one of %s", errUsage, *format, strings.Join(dataFormats, ", "))
		}
		if err != nil {
			return err
		}
		slog.Info("data import", "file", f, "examples", len(ex))
		all = append(all, ex...)
	}
	seen := map[string]string{}
	for _, e := range all {
		if prev, dup := seen[e.ID]; dup {
			return fmt.Errorf("duplicate id %q (questions %q and %q)", e.ID, prev, e.Question)
		}
		seen[e.ID] = e.Question
	}
	if err := dataset.WriteJSONL(*out, all); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %d examples to %s\n", len(all), *out)
	return nil
}

// sameFile reports whether a and b name one existing file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
