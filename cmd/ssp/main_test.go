package main

import (
	"context"
	"strings"
	"testing"
)

// TestCurrentSpellings checks that old spellings of flags reach the parser
// as the current ones, with a note: one-dash long flags, and renamed flags.
func TestCurrentSpellings(t *testing.T) {
	fs := newFlags("x", "")
	fs.String("index", "", "")
	fs.Int("topk", 3, "")
	fs.Int("agent.max_turns", 10, "")
	args := []string{"-index", "i", "-topk=2", "--max-turns", "4", "--out", "-", "-h", "--", "-index"}
	var got []string
	stderr, _ := captureStderr(t, func() int {
		got = currentSpellings(fs, args, map[string]string{"max-turns": "agent.max_turns"})
		return 0
	})
	want := []string{"--index", "i", "--topk=2", "--agent.max_turns", "4", "--out", "-", "-h", "--", "-index"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, old := range []string{"-index is an old spelling of --index", "-topk is an old spelling of --topk", "--max-turns is an old spelling of --agent.max_turns"} {
		if !strings.Contains(stderr, old) {
			t.Errorf("no note %q in:\n%s", old, stderr)
		}
	}
}

// TestHelpGroupsAndCompletion checks the command tree: ssp help GROUP
// lists the group, an unknown command is a usage error, and completion
// scripts go to stdout.
func TestHelpGroupsAndCompletion(t *testing.T) {
	ctx := context.Background()
	stderr, code := captureStderr(t, func() int { return dispatch(ctx, []string{"help", "model"}) })
	if code != 0 || !strings.Contains(stderr, "model generate") || !strings.Contains(stderr, "model import") || strings.Contains(stderr, "index build") {
		t.Errorf("ssp help model: exit %d\n%s", code, stderr)
	}
	stderr, code = captureStderr(t, func() int { return dispatch(ctx, []string{"help", "search", "serve"}) })
	if code != 0 || !strings.Contains(stderr, "--request-memory") {
		t.Errorf("ssp help search serve: exit %d, want the command's flags\n%s", code, stderr)
	}
	// -h prints a command's flags once (a group command's subcommands
	// after them), and exits 0. (Mutation: returning pflag.ErrHelp from the
	// command to cobra prints them twice.)
	for _, c := range []struct {
		args        []string
		subcommands int
	}{{[]string{"index", "build", "-h"}, 0}, {[]string{"world", "grade", "--help"}, 0}, {[]string{"eval", "-h"}, 1}} {
		stderr, code = captureStderr(t, func() int { return dispatch(ctx, c.args) })
		if code != 0 || strings.Count(stderr, "usage: ssp") != 1 || strings.Count(stderr, "subcommands:") != c.subcommands {
			t.Errorf("ssp %v: exit %d, want the usage once and %d subcommand lists:\n%s", c.args, code, c.subcommands, stderr)
		}
	}
	if _, code := captureStderr(t, func() int { return dispatch(ctx, []string{"model", "frob"}) }); code != 2 {
		t.Errorf("ssp model frob: exit %d, want 2", code)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, code := captureStdout(t, func() int { return dispatch(ctx, []string{"completion", shell}) })
		if code != 0 || !strings.Contains(out, "ssp") || len(out) < 500 {
			t.Errorf("ssp completion %s: exit %d, %d bytes on stdout", shell, code, len(out))
		}
	}
	// Completion knows the command tree.
	out, _ := captureStdout(t, func() int { return dispatch(ctx, []string{"__complete", "model", "gen"}) })
	if !strings.Contains(out, "generate") {
		t.Errorf("completing \"ssp model gen\": %q", out)
	}
}
