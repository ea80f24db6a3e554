package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/ssp-project/ssp/internal/agent"
	"github.com/ssp-project/ssp/internal/serve"
	"golang.org/x/term"
)

func init() {
	register(command{name: "ask", summary: "ask a model's search agent a question and watch it search and answer", run: runAsk})
}

func runAsk(ctx context.Context, args []string) error {
	fs := newFlags("ask", `[--model DIR] [--index DIR | --retriever URL] "question"`)
	modelDir := fs.String("model", "", "checkpoint whose agent answers (default: the built-in model on the built-in world)")
	solver := modelSolverFlags(fs)
	temperature := fs.Float64("temperature", 0, "sampling temperature (0: greedy, as ssp eval decodes)")
	seed := fs.Int64("seed", 1, "sampling seed")
	color := fs.String("color", "auto", "colour the output: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
	showText := fs.Bool("trajectory", false, "also print the model's own text as it writes it")
	if err := parseFlags(fs, args, oldSolverFlags); err != nil {
		return err
	}
	question := strings.TrimSpace(strings.Join(fs.Args(), " "))
	if question == "" {
		return fmt.Errorf("%w: give the question as the argument, quoted", errUsage)
	}
	if *temperature < 0 || *temperature > 2 {
		return fmt.Errorf("%w: --temperature %g: want 0 to 2", errUsage, *temperature)
	}
	colored, err := useColor(*color, os.Stdout)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	m, closeFn, err := loadServedModel(ctx, "ask", modelSpec{name: "ask", dir: *modelDir}, serveOptions{solver: solver, set: set}, 1, 1, 0)
	if err != nil {
		return err
	}
	defer closeFn()
	defer m.Close(context.Background())

	job, err := m.Submit(ctx, serve.Request{Agent: true, Question: question,
		Sampling: serve.Sampling{Temperature: float32(*temperature), Seed: *seed}})
	if err != nil {
		return err
	}
	p := newAskPrinter(os.Stdout, colored, *showText)
	p.question(question)
	for {
		ev, err := job.Next()
		if err != nil {
			return err
		}
		p.text(ev.Text)
		if ev.Search != nil {
			p.search(*ev.Search)
		}
		if ev.Result != nil {
			return p.result(ev.Result)
		}
	}
}

// useColor decides whether to write ANSI colours to f.
func useColor(mode string, f *os.File) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		return os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd())), nil
	}
	return false, fmt.Errorf("%w: --color %q: want auto, always or never", errUsage, mode)
}

// askPrinter writes an agent's progress: each search with the documents
// it returned, shortened, and the answer.
type askPrinter struct {
	w        io.Writer
	colored  bool
	showText bool
	midText  bool // the model's text was printed last, without a newline
	err      error
}

func newAskPrinter(w io.Writer, colored, showText bool) *askPrinter {
	return &askPrinter{w: w, colored: colored, showText: showText}
}

// ANSI styles.
const (
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
	ansiBlue  = "\x1b[34m"
	ansiGreen = "\x1b[32m"
	ansiReset = "\x1b[0m"
)

func (p *askPrinter) style(s string, codes ...string) string {
	if !p.colored || s == "" {
		return s
	}
	return strings.Join(codes, "") + s + ansiReset
}

func (p *askPrinter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// endText ends a line of the model's text before anything else is printed.
func (p *askPrinter) endText() {
	if p.midText {
		p.printf("\n")
		p.midText = false
	}
}

func (p *askPrinter) question(q string) {
	p.printf("%s %s\n", p.style("question:", ansiBold), q)
}

// text prints the model's own text when asked to; the results inserted
// after a search are shown by search instead.
func (p *askPrinter) text(t string) {
	if !p.showText || t == "" {
		return
	}
	if at := strings.Index(t, "<information>"); at >= 0 {
		t = strings.TrimRight(t[:at], "\n")
	}
	if t == "" {
		return
	}
	p.printf("%s", p.style(t, ansiDim))
	p.midText = !strings.HasSuffix(t, "\n")
}

func (p *askPrinter) search(call agent.SearchCall) {
	p.endText()
	p.printf("%s %s\n", p.style("search:", ansiBold, ansiBlue), call.Query)
	if len(call.Documents) == 0 {
		p.printf("  %s\n", p.style("(no documents)", ansiDim))
	}
	for i, d := range call.Documents {
		title := d.Title()
		if title == "" {
			title = d.ID
		}
		p.printf("  [%d] %s %s\n", i+1, p.style(title, ansiBold), p.style(shortenText(d.Text(), 100), ansiDim))
	}
}

func (p *askPrinter) result(r *serve.Result) error {
	p.endText()
	if r.Content != "" {
		p.printf("%s %s\n", p.style("answer:", ansiBold, ansiGreen), p.style(r.Content, ansiBold, ansiGreen))
	} else {
		p.printf("%s\n", p.style("no answer", ansiBold))
	}
	p.printf("%s\n", p.style(fmt.Sprintf("(%s, %s, %s generated; finish: %s)",
		count(r.Turns, "turn"), count(len(r.Searches), "search"), count(r.CompletionTokens, "token"), r.AgentFinish), ansiDim))
	return p.err
}

// shortenText keeps the first n characters of text on one line.
func shortenText(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return text
}

// count writes n with its noun, plural when n != 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "h") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
