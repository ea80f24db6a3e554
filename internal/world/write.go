package world

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ssp-project/ssp/internal/outdir"
)

// Files names what Write produces in a directory.
var Files = struct{ Corpus, Seeds, TrainQA, Benchmark, BenchmarkReworded, Info string }{
	Corpus: "corpus.jsonl", Seeds: "seeds.jsonl", TrainQA: "train_qa.jsonl", Benchmark: "benchmark.jsonl",
	BenchmarkReworded: "benchmark_reworded.jsonl", Info: "world.json",
}

// Info summarises a written world (world.json).
type Info struct {
	Seed      uint64         `json:"seed"`
	Size      string         `json:"size"`
	Entities  map[string]int `json:"entities"`
	Passages  int            `json:"passages"`
	Seeds     int            `json:"seeds"`
	TrainQA   int            `json:"train_qa"`
	Benchmark map[int]int    `json:"benchmark_by_hops"`
}

// Write generates the world's files into dir (created if needed). Each file
// is written under a temporary name and renamed, so an interrupted run never
// leaves a truncated file behind.
func (g *Graph) Write(dir string) (Info, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Info{}, err
	}
	passages := g.Passages()
	data := g.Derive()
	info := Info{Seed: g.Seed, Size: g.Size.Name, Entities: map[string]int{}, Passages: len(passages),
		Seeds: len(data.Seeds), TrainQA: len(data.TrainQA), Benchmark: map[int]int{}}
	for k := Country; k <= Work; k++ {
		info.Entities[k.String()] = len(g.byKind[k])
	}
	for _, q := range data.Benchmark {
		info.Benchmark[q.Hops]++
	}
	if err := writeJSONL(filepath.Join(dir, Files.Corpus), passages); err != nil {
		return info, err
	}
	if err := writeJSONL(filepath.Join(dir, Files.Seeds), data.Seeds); err != nil {
		return info, err
	}
	if err := writeJSONL(filepath.Join(dir, Files.TrainQA), data.TrainQA); err != nil {
		return info, err
	}
	if err := writeJSONL(filepath.Join(dir, Files.Benchmark), data.Benchmark); err != nil {
		return info, err
	}
	if err := writeJSONL(filepath.Join(dir, Files.BenchmarkReworded), data.BenchmarkReworded); err != nil {
		return info, err
	}
	if err := writeJSONL(filepath.Join(dir, Files.Info), []Info{info}); err != nil {
		return info, err
	}
	return info, nil
}

func writeJSONL[T any](path string, rows []T) error {
	return outdir.WriteFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// Load regenerates the graph of a world directory written by Write, from
// the seed and size in its world.json (generation is deterministic).
func Load(dir string) (*Graph, error) {
	path := filepath.Join(dir, Files.Info)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (the world directory must come from `ssp world gen`)", err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	size, ok := Sizes[info.Size]
	if !ok {
		return nil, fmt.Errorf("%s: unknown size %q", path, info.Size)
	}
	return Generate(info.Seed, size)
}
