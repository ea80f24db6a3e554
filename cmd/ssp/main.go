// Command ssp trains deep-search LLM agents by search self-play: it builds and
// serves a search index, loads and writes Hugging Face checkpoints, runs the
// proposer/solver game, trains the policy and evaluates it on QA benchmarks.
//
// Each command group lives in its own file of this package and registers
// itself in an init function; main.go builds the cobra command tree from
// them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// command is one CLI verb, such as "train" or "index build".
type command struct {
	name    string // words after "ssp", space separated
	summary string // one line for the usage listing
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

// register adds a command; called from init functions of the command files.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("ssp: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// backendHelp is the help of every --backend flag: what each backend
// needs before it can run.
const backendHelp = "compute backend (default $GOMLX_BACKEND, else go): go is pure Go on the CPU and needs nothing installed; " +
	"xla:cpu and xla:cuda need XLA's PJRT plugin (pjrt_c_api_cpu_plugin.so, pjrt_c_api_cuda_plugin.so) in a folder named by " +
	"PJRT_PLUGIN_LIBRARY_PATH, which ssp does not download (docs/model.md#cpu-and-gpu)"

// errUsage marks errors caused by a bad command line; main exits with 2.
var errUsage = errors.New("usage error")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(dispatch(ctx, os.Args[1:]))
}

// groupSummaries describe the command groups in `ssp help`.
var groupSummaries = map[string]string{
	"data":   "turn benchmark files into eval data",
	"index":  "build and check BM25 search indexes",
	"model":  "run, import, initialise and measure checkpoints",
	"search": "query an index or serve it over Search-R1's /retrieve API",
	"world":  "generate a world and bootstrap a policy on it",
	"eval":   "score a model or a predictions file on QA data and write a run directory",
}

// newRoot builds the command tree from the registered commands: a
// command "index build" is the subcommand build of the group index. Each
// command parses its own flags (GNU style, with pflag); cobra routes,
// lists groups (ssp help GROUP) and writes shell completion scripts
// (ssp completion bash|zsh|fish|powershell).
func newRoot(ctx context.Context) *cobra.Command {
	root := &cobra.Command{
		Use:           "ssp",
		Short:         "search self-play for deep-search agents",
		Long:          "ssp trains deep-search agents by search self-play: it builds and serves search indexes, loads and writes\nHugging Face checkpoints, runs the proposer/solver game, trains the policy and evaluates it on QA benchmarks.",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE:          func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	root.SetHelpFunc(func(*cobra.Command, []string) { listCommands("") })
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names) // a group's own command ("eval") before its subcommands
	nodes := map[string]*cobra.Command{"": root}
	for _, name := range names {
		words := strings.Fields(name)
		for i := range words {
			path := strings.Join(words[:i+1], " ")
			if nodes[path] != nil {
				continue
			}
			parent := nodes[strings.Join(words[:i], " ")]
			var node *cobra.Command
			if c, ok := commands[path]; ok {
				node = leafCommand(ctx, path, c)
			} else {
				node = &cobra.Command{Use: words[i], Short: groupSummaries[path], Args: cobra.NoArgs,
					RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
				node.SetHelpFunc(func(*cobra.Command, []string) { listCommands(path) })
			}
			parent.AddCommand(node)
			nodes[path] = node
		}
	}
	return root
}

// leafCommand wraps a registered command: cobra hands it its arguments
// untouched and its -h prints the command's own flags.
func leafCommand(ctx context.Context, name string, c command) *cobra.Command {
	words := strings.Fields(name)
	cc := &cobra.Command{
		Use:                words[len(words)-1],
		Short:              c.summary,
		DisableFlagParsing: true,
		RunE: func(h *cobra.Command, args []string) error {
			err := c.run(ctx, args)
			if errors.Is(err, pflag.ErrHelp) {
				// The command printed its flags already; returning the
				// error would have cobra print them again.
				listSubcommands(h, name)
				return nil
			}
			return err
		},
	}
	cc.SetHelpFunc(func(h *cobra.Command, _ []string) {
		c.run(ctx, []string{"--help"})
		listSubcommands(h, name)
	})
	return cc
}

// listSubcommands prints, after its flags, the subcommands of a command
// that is also a group (eval: eval compare).
func listSubcommands(h *cobra.Command, name string) {
	if !h.HasSubCommands() {
		return
	}
	fmt.Fprintf(os.Stderr, "\nsubcommands:\n")
	for _, sub := range h.Commands() {
		fmt.Fprintf(os.Stderr, "  %-18s %s\n", name+" "+sub.Name(), sub.Short)
	}
}

// listCommands prints the commands of a group ("" for all) with their
// summaries.
func listCommands(group string) {
	prefix := "ssp "
	if group != "" {
		prefix += group + " "
	}
	fmt.Fprintf(os.Stderr, "usage: %s<command> [flags]   (%s<command> -h for a command's flags)\n\n", prefix, prefix)
	names := make([]string, 0, len(commands))
	for n := range commands {
		if group == "" || n == group || strings.HasPrefix(n, group+" ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-18s %s\n", n, commands[n].summary)
	}
	if group == "" {
		fmt.Fprintf(os.Stderr, "  %-18s %s\n", "help [command]", "this list, a group's commands, or a command's flags")
		fmt.Fprintf(os.Stderr, "  %-18s %s\n", "completion SHELL", "write the shell completion script for bash, zsh, fish or powershell")
	}
}

// dispatch runs the command named by args and returns the exit status:
// 0 on success or help, 2 for a bad command line, 1 for any other error.
func dispatch(ctx context.Context, args []string) int {
	root := newRoot(ctx)
	root.SetArgs(args)
	root.SetErr(os.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	name := strings.TrimPrefix(cmd.CommandPath(), "ssp ")
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "ssp %s: %v\n", name, err)
		return 2
	case strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") || strings.HasPrefix(err.Error(), "unknown shorthand"):
		fmt.Fprintf(os.Stderr, "ssp: %v\n\n", err)
		listCommands(strings.TrimPrefix(strings.TrimPrefix(cmd.CommandPath(), "ssp"), " "))
		return 2
	default:
		fmt.Fprintf(os.Stderr, "ssp %s: %v\n", name, err)
		return 1
	}
}

// newFlags returns a flag set for a command that reports errors instead of
// exiting: GNU-style --flags, flags and arguments in any order.
func newFlags(name, synopsis string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ssp "+name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: ssp %s %s\n", name, synopsis)
		fmt.Fprint(os.Stderr, fs.FlagUsagesWrapped(110))
	}
	return fs
}

// parseFlags parses args and wraps parse failures as usage errors. Old
// spellings are accepted with a note on stderr: a long flag with one dash
// (-index, as the standard flag package took it) and the names in
// oldNames (old → current).
func parseFlags(fs *pflag.FlagSet, args []string, oldNames ...map[string]string) error {
	args = currentSpellings(fs, args, oldNames...)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// currentSpellings rewrites old spellings of flags in args to the current
// ones, telling the user once per spelling.
func currentSpellings(fs *pflag.FlagSet, args []string, oldNames ...map[string]string) []string {
	out := make([]string, 0, len(args))
	told := map[string]bool{}
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			out = append(out, a)
			continue
		}
		dashes := "--"
		body := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, value, hasValue := strings.Cut(body, "=")
		current := name
		for _, m := range oldNames {
			if n, ok := m[name]; ok {
				current = n
			}
		}
		oneDash := !strings.HasPrefix(a, "--") && len(name) > 1
		if (oneDash || current != name) && fs.Lookup(current) != nil {
			old := strings.TrimSuffix(a, "="+value)
			if !told[old] {
				fmt.Fprintf(os.Stderr, "ssp: %s is an old spelling of --%s, which it will stop meaning in a later release\n", old, current)
				told[old] = true
			}
			a = dashes + current
			if hasValue {
				a += "=" + value
			}
		}
		out = append(out, a)
	}
	return out
}
