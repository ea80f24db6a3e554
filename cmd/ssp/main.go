// Command ssp trains deep-search LLM agents by search self-play: it builds and
// serves a search index, loads and writes Hugging Face checkpoints, runs the
// proposer/solver game, trains the policy and evaluates it on QA benchmarks.
//
// Each command group lives in its own file of this package and registers
// itself in an init function, so main.go stays a dispatcher.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
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

// dispatch finds the longest registered command name that prefixes args and runs it.
func dispatch(ctx context.Context, args []string) int {
	for n := min(len(args), 3); n >= 1; n-- {
		name := strings.Join(args[:n], " ")
		if c, ok := commands[name]; ok {
			err := c.run(ctx, args[n:])
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(os.Stderr, "ssp %s: %v\n", name, err)
				return 2
			default:
				fmt.Fprintf(os.Stderr, "ssp %s: %v\n", name, err)
				return 1
			}
		}
	}
	if len(args) > 0 && isGroup(args[0]) {
		if len(args) > 1 && args[1] != "-h" && args[1] != "--help" && args[1] != "help" {
			fmt.Fprintf(os.Stderr, "ssp %s: unknown command %q\n\n", args[0], args[1])
			groupUsage(args[0])
			return 2
		}
		groupUsage(args[0])
		return 0
	}
	if len(args) > 0 && args[0] != "help" && args[0] != "-h" && args[0] != "--help" {
		fmt.Fprintf(os.Stderr, "ssp: unknown command %q\n\n", strings.Join(args, " "))
		usage()
		return 2
	}
	usage()
	return 0
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ssp <command> [flags]   (ssp <command> -h for a command's flags)")
	fmt.Fprintln(os.Stderr)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-18s %s\n", n, commands[n].summary)
	}
}

// groupCommands returns the commands of the group name ("index build" and
// "index verify" for "index"), sorted.
func groupCommands(name string) []string {
	var names []string
	for n := range commands {
		if strings.HasPrefix(n, name+" ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func isGroup(name string) bool { return len(groupCommands(name)) > 0 }

// groupUsage prints the commands of the group name.
func groupUsage(name string) {
	names := groupCommands(name)
	fmt.Fprintf(os.Stderr, "usage: ssp %s <command> [flags]   (ssp %s <command> -h for a command's flags)\n\n", name, name)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-18s %s\n", n, commands[n].summary)
	}
}

// newFlags returns a flag set for a command that reports errors instead of exiting.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("ssp "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: ssp %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and wraps parse failures as usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
