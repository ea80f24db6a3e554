package selfplay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// Seed is one target answer the proposer writes a question for.
type Seed struct {
	// Answers are the accepted spellings; the first is shown to the proposer.
	Answers []string `json:"answers"`
	// Hops is how many searches the question should need; 0 leaves it to
	// filter.min_searches.
	Hops int `json:"hops,omitempty"`
	// Example is an optional sample question shown to the proposer for style.
	Example string `json:"example,omitempty"`
}

// seedRow accepts our rows ({"answer", "hops"}) and SSP's released rows
// ({"ground_truth" or "reward_model": {"ground_truth": {"target"}},
// "search_turns", "sys_question_example"}).
type seedRow struct {
	Answer      json.RawMessage `json:"answer"`
	Hops        *int            `json:"hops"`
	GroundTruth json.RawMessage `json:"ground_truth"`
	RewardModel *struct {
		GroundTruth json.RawMessage `json:"ground_truth"`
	} `json:"reward_model"`
	SearchTurns *int   `json:"search_turns"`
	Example     string `json:"sys_question_example"`
}

// LoadSeeds reads a JSONL seed file.
func LoadSeeds(path string) ([]Seed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seeds: %w", err)
	}
	defer f.Close()
	return ParseSeeds(f, path)
}

// ParseSeeds reads JSONL seed rows; name labels errors. Blank lines are
// skipped; every other line must hold a row with a non-empty answer.
func ParseSeeds(r io.Reader, name string) ([]Seed, error) {
	var seeds []Seed
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		seed, err := parseSeedRow(text)
		if err != nil {
			return nil, fmt.Errorf("seeds %s:%d: %w", name, line, err)
		}
		seeds = append(seeds, seed)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("seeds %s: %w", name, err)
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("seeds %s: no rows", name)
	}
	return seeds, nil
}

func parseSeedRow(text []byte) (Seed, error) {
	var row seedRow
	if err := json.Unmarshal(text, &row); err != nil {
		return Seed{}, err
	}
	var seed Seed
	var err error
	switch {
	case len(row.Answer) > 0 && string(row.Answer) != "null":
		seed.Answers, err = parseAliases(row.Answer, "answer")
	case len(row.GroundTruth) > 0 && string(row.GroundTruth) != "null":
		seed.Answers, err = parseAliases(row.GroundTruth, "ground_truth")
	case row.RewardModel != nil && len(row.RewardModel.GroundTruth) > 0:
		seed.Answers, err = parseGroundTruth(row.RewardModel.GroundTruth)
	default:
		return Seed{}, fmt.Errorf("no answer: want \"answer\", \"ground_truth\" or \"reward_model.ground_truth.target\"")
	}
	if err != nil {
		return Seed{}, err
	}
	switch {
	case row.Hops != nil:
		seed.Hops = *row.Hops
	case row.SearchTurns != nil:
		seed.Hops = *row.SearchTurns
	}
	if seed.Hops < 0 {
		return Seed{}, fmt.Errorf("hops: must not be negative, got %d", seed.Hops)
	}
	seed.Example = strings.TrimSpace(row.Example)
	return seed, nil
}

// parseGroundTruth reads verl's reward_model.ground_truth, which is either
// the answer itself or an object with a "target" field.
func parseGroundTruth(raw json.RawMessage) ([]string, error) {
	var obj struct {
		Target json.RawMessage `json:"target"`
	}
	if err := json.Unmarshal(raw, &obj); err == nil {
		if len(obj.Target) == 0 {
			return nil, fmt.Errorf("reward_model.ground_truth: no \"target\"")
		}
		return parseAliases(obj.Target, "reward_model.ground_truth.target")
	}
	return parseAliases(raw, "reward_model.ground_truth")
}

// parseAliases accepts a string or a list of strings, trims them, drops
// empty and repeated ones and requires at least one.
func parseAliases(raw json.RawMessage, field string) ([]string, error) {
	var list []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%s: want a string or a list of strings", field)
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range list {
		a = strings.TrimSpace(a)
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty", field)
	}
	return out, nil
}
