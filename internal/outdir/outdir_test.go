package outdir

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func fill(content string) func(string) error {
	return func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "data"), []byte(content), 0o644) }
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listing returns every name under dir with file contents, to compare a
// directory before and after a refused write.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p)
		if !d.IsDir() {
			data, _ := os.ReadFile(p)
			b.WriteString("=" + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

func TestWriteReplacesOnlyItsOwnKind(t *testing.T) {
	root := t.TempDir()
	dst := filepath.Join(root, "out")
	if err := Write(dst, Index, Options{}, fill("one")); err != nil {
		t.Fatal(err)
	}
	if KindOf(dst) != Index || read(t, filepath.Join(dst, "data")) != "one" {
		t.Fatalf("first write: kind %q", KindOf(dst))
	}
	if err := Write(dst, Index, Options{}, fill("two")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dst, "data")); got != "two" {
		t.Fatalf("replaced content %q, want two", got)
	}
	// Another kind is refused, with the kinds named, unless forced.
	err := Write(dst, Model, Options{ForceFlag: "--force"}, fill("three"))
	if err == nil || !strings.Contains(err.Error(), "holds an ssp index, not a model checkpoint") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("other kind: err = %v", err)
	}
	if err := Write(dst, Model, Options{Force: true}, fill("three")); err != nil {
		t.Fatal(err)
	}
	if KindOf(dst) != Model {
		t.Fatalf("forced write: kind %q", KindOf(dst))
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("left beside the output: %v", entries)
	}
}

func TestWriteRefusesForeignData(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "corpus.jsonl")
	os.WriteFile(file, []byte("{}\n"), 0o644)
	foreign := filepath.Join(root, "keep")
	os.Mkdir(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
	empty := filepath.Join(root, "empty")
	os.Mkdir(empty, 0o755)
	before := listing(t, root)

	err := Write(file, Index, Options{Force: true}, fill("x"))
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "existing file") {
		t.Errorf("file: err = %v", err)
	}
	err = Write(foreign, Index, Options{ForceFlag: "--force"}, fill("x"))
	if err == nil || !strings.Contains(err.Error(), foreign) || !strings.Contains(err.Error(), "pass --force") {
		t.Errorf("foreign directory: err = %v", err)
	}
	err = Write(foreign, Index, Options{}, fill("x"))
	if err == nil || strings.Contains(err.Error(), "--force") {
		t.Errorf("foreign directory without a force flag: err = %v", err)
	}
	if got := listing(t, root); got != before {
		t.Fatalf("refused writes changed the tree:\n%s\nwant\n%s", got, before)
	}
	// An empty directory and a legacy output are replaced.
	if err := Write(empty, Index, Options{}, fill("x")); err != nil {
		t.Error(err)
	}
	legacy := func(dir string) bool { _, err := os.Stat(filepath.Join(dir, "notes.txt")); return err == nil }
	if err := Write(foreign, Index, Options{Legacy: legacy}, fill("x")); err != nil {
		t.Error(err)
	}
}

func TestWriteFailureLeavesDestination(t *testing.T) {
	root := t.TempDir()
	dst := filepath.Join(root, "out")
	if err := Write(dst, World, Options{}, fill("old")); err != nil {
		t.Fatal(err)
	}
	before := listing(t, root)
	boom := errors.New("boom")
	var tmpSeen string
	err := Write(dst, World, Options{}, func(tmp string) error {
		tmpSeen = tmp
		os.WriteFile(filepath.Join(tmp, "data"), []byte("half"), 0o644)
		_, err := os.ReadFile(filepath.Join(tmp, "missing"))
		return errors.Join(boom, err)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the fill error", err)
	}
	if strings.Contains(err.Error(), tmpSeen) || !strings.Contains(err.Error(), filepath.Join(dst, "missing")) {
		t.Errorf("error %q names the temporary directory instead of %s", err, dst)
	}
	if got := listing(t, root); got != before {
		t.Fatalf("failed write changed the tree:\n%s\nwant\n%s", got, before)
	}
}

func TestWriteIntoReadOnlyParent(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root ignores directory permissions: the test runs again in a
		// copy of this binary as nobody.
		runAsNobody(t)
		return
	}
	root := t.TempDir()
	ro := filepath.Join(root, "ro")
	os.Mkdir(ro, 0o755)
	os.Chmod(ro, 0o555)
	defer os.Chmod(ro, 0o755)
	err := Write(filepath.Join(ro, "out"), Index, Options{}, fill("x"))
	if err == nil || strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("err = %v", err)
	}
}

// runAsNobody runs the calling test in a child process of this test binary
// as the user nobody, and fails with the child's output if it fails or does
// not run the test.
func runAsNobody(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The test's temporary directory and its parent are root's alone.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "outdir.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TMPDIR="+dir, "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s as nobody: %v\n%s", t.Name(), err, out)
	}
}
