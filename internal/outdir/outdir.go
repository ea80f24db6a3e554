// Package outdir writes every output directory of ssp (indexes, model
// checkpoints, optimizer states, training checkpoints, worlds, eval runs)
// the same way: the content is assembled in a temporary sibling directory,
// a marker file naming its kind is added, and only then is it moved into
// place. An existing directory is replaced only when ssp can prove it wrote
// it (a marker of the same kind, or an empty directory); a regular file is
// never replaced, and any other directory only with Options.Force. A failed
// or interrupted write leaves the destination as it was.
package outdir

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Marker is the file that marks a directory as written by ssp.
const Marker = ".ssp-output"

// Kind names what an output directory holds.
type Kind string

// The kinds of output directory ssp writes.
const (
	Index      Kind = "index"
	Model      Kind = "model checkpoint"
	Adapter    Kind = "LoRA adapter"
	Optimizer  Kind = "optimizer state"
	Checkpoint Kind = "training checkpoint"
	World      Kind = "world"
	EvalRun    Kind = "eval run"
	Run        Kind = "training run"
)

// Options adjusts what Write and Check accept at the destination.
type Options struct {
	// Force replaces a directory that ssp did not write (never a file).
	Force bool
	// ForceFlag is the command-line flag that sets Force ("--force"),
	// named in refusals; empty where the caller has none.
	ForceFlag string
	// Fresh refuses to replace even an output of the same kind (a result
	// that a user may still want, such as an eval run); Force overrides.
	Fresh bool
	// Legacy recognises a directory of this kind written before markers
	// existed (for example an index by its meta.json); it may be nil.
	Legacy func(dir string) bool
}

type marker struct {
	Kind string `json:"kind"`
}

// KindOf returns the kind recorded in dir's marker, or "" when dir has
// none (or is not a readable directory).
func KindOf(dir string) Kind {
	data, err := os.ReadFile(filepath.Join(dir, Marker))
	if err != nil {
		return ""
	}
	var m marker
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	return Kind(m.Kind)
}

// Mark writes the marker of kind into dir.
func Mark(dir string, kind Kind) error {
	data, _ := json.Marshal(marker{Kind: string(kind)})
	return os.WriteFile(filepath.Join(dir, Marker), append(data, '\n'), 0o644)
}

// Check reports whether dst may be written as kind with opt: it must be
// absent, an empty directory, a directory marked as kind (or recognised by
// opt.Legacy), or, with opt.Force, any directory. The error names dst and
// says how to proceed.
func Check(dst string, kind Kind, opt Options) error {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	if !fi.IsDir() {
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("output %s is a symbolic link; ssp writes a %s as a new directory: give the real path or choose another output path", dst, kind)
		}
		return fmt.Errorf("output %s is an existing file, not a %s directory: choose another output path (nothing was written)", dst, kind)
	}
	if opt.Force {
		return nil
	}
	switch got := KindOf(dst); {
	case got == kind && opt.Fresh:
		return fmt.Errorf("output %s already holds an ssp %s: choose another output path%s", dst, kind, forceHint(opt))
	case got == kind:
		return nil
	case got != "":
		return fmt.Errorf("output %s holds an ssp %s, not a %s: choose another output path%s", dst, got, kind, forceHint(opt))
	}
	if opt.Legacy != nil && opt.Legacy(dst) {
		return nil
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("output %s is a non-empty directory that ssp did not write as a %s (it has no %s): choose another output path%s",
			dst, kind, Marker, forceHint(opt))
	}
	return nil
}

func forceHint(opt Options) string {
	if opt.ForceFlag == "" {
		return ""
	}
	return ", or pass " + opt.ForceFlag + " to replace it"
}

// Write creates the directory dst of the given kind: it checks dst (see
// Check), calls fill with an empty temporary directory beside dst, marks
// it and moves it into place, replacing what dst held. When fill or any
// step fails, the temporary directory is removed and dst is unchanged.
// Errors speak of dst, never of the temporary name.
func Write(dst string, kind Kind, opt Options, fill func(tmp string) error) error {
	dst = filepath.Clean(dst)
	if err := Check(dst, kind, opt); err != nil {
		return err
	}
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return fmt.Errorf("output %s: cannot create a directory in %s: %w", dst, parent, unwrapPath(err))
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("output %s: %w", dst, err)
	}
	if err := fill(tmp); err != nil {
		return hideTemp(err, tmp, dst)
	}
	if err := Mark(tmp, kind); err != nil {
		return hideTemp(fmt.Errorf("output %s: %w", dst, err), tmp, dst)
	}
	if err := syncDir(tmp); err != nil {
		return hideTemp(fmt.Errorf("output %s: %w", dst, err), tmp, dst)
	}
	// Check again: dst may have been created while fill ran.
	if err := Check(dst, kind, opt); err != nil {
		return err
	}
	if err := install(tmp, dst); err != nil {
		return hideTemp(fmt.Errorf("output %s: %w", dst, err), tmp, dst)
	}
	_ = syncDir(parent)
	return nil
}

// install moves tmp to dst. An existing dst is swapped with tmp atomically
// where the system can (so dst is never absent), else moved aside first;
// the old content is removed once the new one is in place.
func install(tmp, dst string) error {
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dst)
	}
	if err := exchange(tmp, dst); err == nil {
		return os.RemoveAll(tmp) // tmp now holds the old content
	}
	old := tmp + ".old"
	if err := os.Rename(dst, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if rerr := os.Rename(old, dst); rerr != nil {
			return fmt.Errorf("%w; the previous content is kept in %s", err, old)
		}
		return err
	}
	return os.RemoveAll(old)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// unwrapPath drops the path of a *fs.PathError, which would name the
// temporary directory.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hideTemp rewrites every mention of the temporary directory in err's
// message as the destination, keeping err for errors.Is and errors.As.
func hideTemp(err error, tmp, dst string) error {
	if err == nil || !strings.Contains(err.Error(), tmp) {
		return err
	}
	return &tempHidden{err: err, msg: strings.ReplaceAll(err.Error(), tmp, dst)}
}

type tempHidden struct {
	err error
	msg string
}

func (e *tempHidden) Error() string { return e.msg }
func (e *tempHidden) Unwrap() error { return e.err }

// WriteFile writes the file path through a temporary sibling that is synced
// and renamed over path, so path holds either its old or its new content.
// A directory at path is refused; an existing file is replaced. Errors
// speak of path, never of the temporary name.
func WriteFile(path string, fill func(w io.Writer) error) error {
	path = filepath.Clean(path)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("output %s is a directory; give the path of a file to write", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("output %s: cannot create a file in %s: %w", path, filepath.Dir(path), unwrapPath(err))
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	w := bufio.NewWriterSize(f, 1<<20)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return hideTemp(fmt.Errorf("output %s: %w", path, err), tmp, path)
	}
	return nil
}
