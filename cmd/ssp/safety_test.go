package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets a test run the ssp command line in a child process (the
// test binary itself, with SSP_TEST_MAIN=1), so that a test can limit the
// child's file size or run it as another user.
func TestMain(m *testing.M) {
	if os.Getenv("SSP_TEST_MAIN") == "1" {
		os.Exit(dispatch(context.Background(), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// writer is one command that writes an output path.
type writer struct {
	name string
	// args returns the command line writing out; inputs live under in.
	args func(in, out string) []string
	// file: the output is a file (replaced like any -o), not a directory.
	file bool
	// inputAsOut names an input file to pass as the output (for file
	// writers, the "existing file" case).
	inputAsOut string
	slow       bool
}

const tinyConfig = `{"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64,
	"num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 50,
	"max_position_embeddings": 64, "tie_word_embeddings": true, "eos_token_id": 49}`

func safetyWriters() []writer {
	return []writer{
		{name: "index build", args: func(in, out string) []string {
			return []string{"index", "build", "--quiet", "--corpus", filepath.Join(in, "corpus.jsonl"), "--out", out}
		}},
		{name: "model init", args: func(in, out string) []string {
			return []string{"model", "init", "--config", filepath.Join(in, "config.json"), "--out", out}
		}},
		{name: "model import", args: func(in, out string) []string {
			return []string{"model", "import", "--gguf", filepath.Join(in, "model.gguf"), "--out", out}
		}},
		{name: "world gen", args: func(in, out string) []string {
			return []string{"world", "gen", "--size", "tiny", "--out", out}
		}},
		{name: "eval", args: func(in, out string) []string {
			return []string{"eval", "--predictions", filepath.Join(in, "preds.jsonl"), "--data", filepath.Join(in, "data.jsonl"), "--out", out}
		}},
		{name: "data import", file: true, inputAsOut: "data.jsonl", args: func(in, out string) []string {
			return []string{"data", "import", "--format", "jsonl", filepath.Join(in, "data.jsonl"), "--out", out}
		}},
		{name: "world bootstrap", slow: true, args: func(in, out string) []string {
			return []string{"world", "bootstrap", "--world", filepath.Join(in, "world"), "--out", out, "--vocab-size", "300", "--hidden", "16",
				"--layers", "1", "--heads", "2", "--kv-heads", "1", "--intermediate", "32", "--lm-steps", "1", "--protocol-steps", "1",
				"--batch-size", "2", "--seq-len", "32", "--probe-questions", "1"}
		}},
	}
}

// snapshot records every path under root with its mode and a hash of its
// content.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v", strings.TrimPrefix(p, root), info.Mode())
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			fmt.Fprintf(&b, " %x", h.Sum(nil)[:8])
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// childRun runs ssp with args in a child process; fileLimitKB > 0 limits
// the size of every file it writes (a full disk, as the child sees it);
// uid >= 0 runs it as that user. It returns the exit code and stderr.
func childRun(t *testing.T, bin string, fileLimitKB int, uid int, args ...string) (int, string) {
	t.Helper()
	script := `exec "$0" "$@"`
	if fileLimitKB > 0 {
		script = fmt.Sprintf(`ulimit -f %d && exec "$0" "$@"`, fileLimitKB)
	}
	cmd := exec.Command("sh", append([]string{"-c", script, bin}, args...)...)
	cmd.Env = append(os.Environ(), "SSP_TEST_MAIN=1", "GOMLX_BACKEND=go", "HOME="+os.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		t.Fatalf("running %v: %v", args, err)
	}
	return 0, stderr.String()
}

// TestWritersLeaveExistingDataAlone runs every command that writes an
// output against an existing file, a directory that ssp did not write, a
// read-only directory and a full disk (a file-size limit), and checks that
// each refusal or failure leaves everything that existed unchanged, with
// an error that names the path and no temporary name.
func TestWritersLeaveExistingDataAlone(t *testing.T) {
	// Inputs and outputs live in a tree every user can read, so that the
	// read-only case can run as an unprivileged user when the tests run as
	// root (root ignores directory permissions).
	root, err := os.MkdirTemp("", "ssp-safety-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	os.Chmod(root, 0o755)
	in := filepath.Join(root, "in")
	os.Mkdir(in, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "ssp.test")
	copyFile(t, self, bin, 0o755)
	copyFile(t, "../../internal/corpus/testdata/wiki.jsonl", filepath.Join(in, "corpus.jsonl"), 0o644)
	os.WriteFile(filepath.Join(in, "config.json"), []byte(tinyConfig), 0o644)
	// Enough examples that every output exceeds the 1 KiB "full disk".
	var data, preds strings.Builder
	for i := range 40 {
		fmt.Fprintf(&data, `{"id":"q%d","question":"Capital of Austria?","golden_answers":["Vienna"],"data_source":"t"}`+"\n", i)
		fmt.Fprintf(&preds, `{"id":"q%d","response":"<answer>Vienna</answer>"}`+"\n", i)
	}
	os.WriteFile(filepath.Join(in, "data.jsonl"), []byte(data.String()), 0o644)
	os.WriteFile(filepath.Join(in, "preds.jsonl"), []byte(preds.String()), 0o644)
	os.WriteFile(filepath.Join(in, "model.gguf"), []byte("not a gguf file"), 0o644)
	if code := dispatch(context.Background(), []string{"world", "gen", "--size", "tiny", "--out", filepath.Join(in, "world")}); code != 0 {
		t.Fatalf("world gen: exit %d", code)
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		} else if err == nil {
			os.Chmod(p, 0o644|(mustInfo(p).Mode()&0o111))
		}
		return nil
	})

	other := -1
	if os.Geteuid() == 0 {
		other = 65534 // nobody
	}
	for _, w := range safetyWriters() {
		t.Run(strings.ReplaceAll(w.name, " ", "_"), func(t *testing.T) {
			if w.slow && testing.Short() {
				t.Skip("trains a model")
			}
			work := filepath.Join(root, strings.ReplaceAll(w.name, " ", "-"))
			os.Mkdir(work, 0o755)
			check := func(t *testing.T, what string, out string, uid, limitKB int, wantIn string) {
				t.Helper()
				before := snapshot(t, root)
				code, stderr := childRun(t, bin, limitKB, uid, w.args(in, out)...)
				if code == 0 {
					t.Errorf("%s: exit 0, want a refusal or a failure", what)
				}
				if wantIn != "" && !strings.Contains(stderr, wantIn) {
					t.Errorf("%s: error does not name %s:\n%s", what, wantIn, stderr)
				}
				if strings.Contains(stderr, ".tmp") || strings.Contains(stderr, "goroutine ") {
					t.Errorf("%s: error shows internals:\n%s", what, stderr)
				}
				if after := snapshot(t, root); after != before {
					t.Errorf("%s changed existing data:\nbefore\n%s\nafter\n%s", what, before, after)
				}
			}

			// 1. An existing file as the output.
			target := filepath.Join(work, "existing.txt")
			if w.inputAsOut != "" {
				target = filepath.Join(in, w.inputAsOut)
			} else {
				os.WriteFile(target, []byte("precious"), 0o644)
			}
			check(t, "an existing file", target, -1, 0, target)

			// 2. A directory that ssp did not write.
			foreign := filepath.Join(work, "keep")
			os.Mkdir(foreign, 0o755)
			os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
			check(t, "a foreign directory", foreign, -1, 0, foreign)

			if w.name == "model import" {
				return // no GGUF model among the inputs: the remaining cases are covered in internal/gguf
			}
			// 3. A read-only directory.
			ro := filepath.Join(work, "ro")
			os.Mkdir(ro, 0o755)
			os.WriteFile(filepath.Join(ro, "kept.txt"), []byte("x"), 0o644)
			os.Chmod(ro, 0o555)
			check(t, "a read-only directory", filepath.Join(ro, "out"), other, 0, filepath.Join(ro, "out"))
			os.Chmod(ro, 0o755)

			// 4. A full disk while replacing an earlier output of the
			// command: the earlier output must survive whole.
			out := filepath.Join(work, "out")
			if code, stderr := childRun(t, bin, 0, -1, w.args(in, out)...); code != 0 {
				t.Fatalf("first write of %s: exit %d\n%s", out, code, stderr)
			}
			args := w.args(in, out)
			if w.name == "eval" {
				args = append(args, "--force") // an eval run is otherwise never replaced
			}
			w2 := w
			w2.args = func(string, string) []string { return args }
			wSaved := w
			w = w2
			check(t, "a full disk", out, -1, 1, "")
			w = wSaved
		})
	}
}

func mustInfo(p string) fs.FileInfo {
	fi, err := os.Stat(p)
	if err != nil {
		panic(err)
	}
	return fi
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

func TestCommandGroupListsItsCommands(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{{[]string{"index"}, 0}, {[]string{"index", "frob"}, 2}} {
		code, stderr := childRun(t, self, 0, -1, c.args...)
		if code != c.code || !strings.Contains(stderr, "index build") || !strings.Contains(stderr, "index verify") {
			t.Errorf("ssp %v: exit %d, want %d, stderr:\n%s", c.args, code, c.code, stderr)
		}
	}
}
