package eval

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/ssp-project/ssp/internal/dataset"
	"github.com/ssp-project/ssp/internal/outdir"
)

// Provenance records what produced a run: the command, the code, the
// model or predictions, the search backend, the data and the settings.
type Provenance struct {
	Command     string         `json:"command,omitempty"`
	Code        string         `json:"code,omitempty"`
	Started     string         `json:"started,omitempty"`
	Model       string         `json:"model,omitempty"`
	Predictions string         `json:"predictions,omitempty"`
	Index       string         `json:"index,omitempty"`
	Retriever   string         `json:"retriever,omitempty"`
	Data        []string       `json:"data,omitempty"`
	Examples    int            `json:"examples"`
	DataDigest  string         `json:"data_digest"` // DigestExamples of the examples evaluated
	Settings    map[string]any `json:"settings,omitempty"`
}

// DigestExamples identifies a set of examples by content: the SHA-256 of
// their ids, questions and gold answers in order. Two runs over the same
// questions have the same digest whatever the files were called.
func DigestExamples(examples []dataset.Example) string {
	h := sha256.New()
	for _, e := range examples {
		fmt.Fprintf(h, "%q\x00%q\x00%q\n", e.ID, e.Question, e.GoldenAnswers)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// CodeVersion names the code that is running: the VCS revision the binary
// was built from (with "+modified" for a dirty tree), else the module
// version, else "unknown".
func CodeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev != "" {
		return rev + modified
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "unknown (built without VCS information; go build in a git checkout records the revision)"
}

// partial holds the records file of an unfinished run.
type partial struct{ f *os.File }

// openPartial opens PartialDir(outDir) for appending. A new directory
// gets prov as provenance.json. An existing one is an error unless resume,
// when its records are read back (a line cut short by a crash is dropped)
// and its provenance must name the same examples.
func openPartial(outDir string, resume bool, prov *Provenance, ids map[string]bool) (*partial, []Record, error) {
	dir := PartialDir(outDir)
	recPath := filepath.Join(dir, "trajectories.jsonl")
	provPath := filepath.Join(dir, "provenance.json")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
		}
		if err := writeJSONFile(provPath, prov); err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
		}
		f, err := os.OpenFile(recPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
		}
		return &partial{f: f}, nil, nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
	}

	data, err := os.ReadFile(recPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
	}
	// Only complete lines count: a line cut short by a crash is dropped.
	valid := data[:bytes.LastIndexByte(data, '\n')+1]
	var records []Record
	sc := bufio.NewScanner(bytes.NewReader(valid))
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, nil, fmt.Errorf("eval run %s: %s line %d: %w", outDir, recPath, n, err)
		}
		if !ids[r.ID] {
			return nil, nil, fmt.Errorf("eval run %s: %s holds example %q, which is not in the data", outDir, recPath, r.ID)
		}
		records = append(records, r)
	}
	if !resume {
		return nil, nil, fmt.Errorf("eval run %s: %s holds an interrupted run (%d examples done); add --resume to continue it, or remove it to start again", outDir, dir, len(records))
	}
	var old Provenance
	if raw, err := os.ReadFile(provPath); err != nil {
		return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
	} else if err := json.Unmarshal(raw, &old); err != nil {
		return nil, nil, fmt.Errorf("eval run %s: %s: %w", outDir, provPath, err)
	}
	if old.DataDigest != prov.DataDigest {
		return nil, nil, fmt.Errorf("eval run %s: the interrupted run evaluated other examples (%d, %s) than these (%d, %s); give the same --data and --limit, or another --out",
			outDir, old.Examples, old.DataDigest, prov.Examples, prov.DataDigest)
	}
	if old.Model != prov.Model || old.Predictions != prov.Predictions {
		return nil, nil, fmt.Errorf("eval run %s: the interrupted run evaluated %s, not %s; give the same --model or --predictions, or another --out",
			outDir, strings.TrimSpace(old.Model+" "+old.Predictions), strings.TrimSpace(prov.Model+" "+prov.Predictions))
	}
	f, err := os.OpenFile(recPath, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
	}
	if err := f.Truncate(int64(len(valid))); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
	}
	if _, err := f.Seek(0, 2); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("eval run %s: %w", outDir, err)
	}
	return &partial{f: f}, records, nil
}

// append writes records as JSON lines and syncs them to disk.
func (p *partial) append(records []Record) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, r := range records {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if _, err := p.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", p.f.Name(), err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", p.f.Name(), err)
	}
	return nil
}

func (p *partial) close() {
	if p != nil && p.f != nil {
		p.f.Close()
		p.f = nil
	}
}

// writeJSONFile writes v indented into path through a temporary file.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return outdir.WriteFile(path, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}
