package encoder

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/fixtures"
	"github.com/ssp-project/ssp/internal/safetensors"
)

// assetPath is a file that scripts/fetch_encoders.sh writes.
func assetPath(t testing.TB, parts ...string) string {
	t.Helper()
	return fixtures.Asset(t, "scripts/fetch_encoders.sh", parts...)
}

// encoderDir is one of the model directories of scripts/fetch_encoders.sh.
func encoderDir(t testing.TB, name string) string {
	t.Helper()
	return assetPath(t, "encoders", name)
}

func openEncoder(t testing.TB, dir string, opts Options) *Encoder {
	t.Helper()
	e, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// compareVectors checks got against want row by row: the cosine must be
// at least minCosine and |got-want| at most maxRelativeDiff of |want|
// (cosine alone would not see a missing normalisation). It returns the
// smallest cosine and the largest relative difference.
func compareVectors(t *testing.T, what string, texts []string, got [][]float32, want [][]float64, minCosine float64) (float64, float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d vectors, want %d", what, len(got), len(want))
	}
	worst, worstDiff := 1.0, 0.0
	failures := 0
	for i := range got {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s[%d]: dim %d, want %d", what, i, len(got[i]), len(want[i]))
		}
		var dot, gg, ww, diff float64
		for j, g := range got[i] {
			w := want[i][j]
			dot += float64(g) * w
			gg += float64(g) * float64(g)
			ww += w * w
			diff += (float64(g) - w) * (float64(g) - w)
		}
		cosine := dot / math.Sqrt(gg*ww)
		worst = min(worst, cosine)
		relative := math.Sqrt(diff / ww)
		worstDiff = max(worstDiff, relative)
		if cosine < minCosine || relative > maxRelativeDiff {
			failures++
			if failures <= 5 {
				t.Errorf("%s[%d] %.60q: cosine %.6f, |got-want| %.3g, |want| %.3g", what, i, texts[i], cosine, math.Sqrt(diff), math.Sqrt(ww))
			}
		}
	}
	if failures > 0 {
		t.Errorf("%s: %d of %d vectors differ", what, failures, len(got))
	}
	return worst, worstDiff
}

// maxRelativeDiff bounds |got-want|/|want| per vector: float32 rounding
// in a different order of operations stays orders of magnitude below it.
const maxRelativeDiff = 1e-4

// TestMatchesSentenceTransformers compares every text's vectors with the
// sentence-transformers references: plain, and with the query and passage
// prefixes where the directory has prompts.
func TestMatchesSentenceTransformers(t *testing.T) {
	cases := []struct {
		model          string
		pooling        string
		query, passage string
	}{
		{"all-MiniLM-L6-v2", PoolingMean, "", ""},
		{"tiny-bge", PoolingCLS, "Represent this sentence for searching relevant passages: ", ""},
		{"tiny-e5", PoolingMean, "query: ", "passage: "},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			texts, ref := loadReference(t, c.model)
			e := openEncoder(t, encoderDir(t, c.model), Options{})
			info := e.Info()
			if info.Pooling != c.pooling || !info.Normalize || info.QueryPrefix != c.query || info.PassagePrefix != c.passage ||
				info.MaxLength != ref.MaxSeqLength || info.Config != "sentence-transformers" {
				t.Fatalf("Info = %+v; want pooling %s, normalised, prefixes %q/%q, max length %d", info, c.pooling, c.query, c.passage, ref.MaxSeqLength)
			}
			if info.QueryPrefix != ref.QueryPrefix || info.PassagePrefix != ref.PassagePrefix {
				t.Fatalf("prefixes %q/%q, the references used %q/%q", info.QueryPrefix, info.PassagePrefix, ref.QueryPrefix, ref.PassagePrefix)
			}
			ctx := context.Background()
			plain, err := e.Encode(ctx, texts)
			if err != nil {
				t.Fatal(err)
			}
			worst, worstDiff := compareVectors(t, "plain", texts, plain, ref.Embeddings["plain"], 0.9999)
			sides := []struct {
				name   string
				prefix string
				encode func(context.Context, []string) ([][]float32, error)
			}{{"query", c.query, e.EncodeQueries}, {"passage", c.passage, e.EncodePassages}}
			for _, side := range sides {
				got := plain
				if side.prefix != "" { // the same texts otherwise: no need to run them again
					if got, err = side.encode(ctx, texts); err != nil {
						t.Fatal(err)
					}
				}
				cosine, diff := compareVectors(t, side.name, texts, got, ref.Embeddings[side.name], 0.9999)
				worst, worstDiff = min(worst, cosine), max(worstDiff, diff)
			}
			t.Logf("%s: %d texts × 3 encodings, min cosine %.9f, max |got-want|/|want| %.2g", c.model, len(texts), worst, worstDiff)
		})
	}
}

// TestBatchingMatchesOneByOne checks that padding, sorting and bucketing
// leave every vector as it is when the text is encoded alone.
func TestBatchingMatchesOneByOne(t *testing.T) {
	texts, _ := loadReference(t, "tiny-e5")
	texts = texts[:40]
	batched := openEncoder(t, encoderDir(t, "tiny-e5"), Options{BatchSize: 16})
	single := openEncoder(t, encoderDir(t, "tiny-e5"), Options{BatchSize: 1})
	ctx := context.Background()
	all, err := batched.EncodePassages(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		one, err := single.EncodePassages(ctx, []string{text})
		if err != nil {
			t.Fatal(err)
		}
		for j := range one[0] {
			if d := math.Abs(float64(one[0][j] - all[i][j])); d > 1e-5 {
				t.Fatalf("text %d %q dim %d: batched %g, alone %g", i, text, j, all[i][j], one[0][j])
			}
		}
	}
}

// TestDefaultsWithoutSentenceTransformersFiles opens a bare transformers
// directory: mean pooling, no normalisation, no prefixes; options then
// rebuild the tiny-e5 configuration and its vectors.
func TestDefaultsWithoutSentenceTransformersFiles(t *testing.T) {
	src := encoderDir(t, "tiny-e5")
	dir := t.TempDir()
	for _, name := range []string{"config.json", "tokenizer.json", "model.safetensors"} {
		if err := os.Symlink(filepath.Join(src, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	texts, ref := loadReference(t, "tiny-e5")
	ctx := context.Background()

	bare := openEncoder(t, dir, Options{})
	info := bare.Info()
	if info.Pooling != PoolingMean || info.Normalize || info.QueryPrefix != "" || info.PassagePrefix != "" ||
		info.MaxLength != 512 || info.Config != "defaults" {
		t.Fatalf("Info = %+v; want mean pooling, no normalisation, no prefixes, max length 512", info)
	}
	vectors, err := bare.Encode(ctx, texts[:5])
	if err != nil {
		t.Fatal(err)
	}
	var norm float64
	for _, v := range vectors[1] {
		norm += float64(v) * float64(v)
	}
	if math.Abs(math.Sqrt(norm)-1) < 1e-3 {
		t.Errorf("vector norm %g: normalised without a Normalize module", math.Sqrt(norm))
	}

	yes, query, passage := true, "query: ", "passage: "
	configured := openEncoder(t, dir, Options{Normalize: &yes, QueryPrefix: &query, PassagePrefix: &passage, MaxLength: 64, Pooling: PoolingMean})
	if got := configured.Info().Config; got != "defaults+options" {
		t.Errorf("Info.Config = %q, want defaults+options", got)
	}
	got, err := configured.EncodeQueries(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	compareVectors(t, "query", texts, got, ref.Embeddings["query"], 0.9999)
}

func TestOpenErrors(t *testing.T) {
	tinyE5 := encoderDir(t, "tiny-e5")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	// copyOf mirrors tiny-e5 in a new directory, files as symbolic links
	// (never written through), with some files replaced (nil: removed).
	copyOf := func(replace map[string][]byte) string {
		dir := t.TempDir()
		err := filepath.WalkDir(tinyE5, func(path string, entry os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(tinyE5, path)
			if entry.IsDir() {
				return os.MkdirAll(filepath.Join(dir, rel), 0o755)
			}
			if _, replaced := replace[filepath.ToSlash(rel)]; replaced {
				return nil
			}
			return os.Symlink(path, filepath.Join(dir, rel))
		})
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range replace {
			if data == nil {
				continue
			}
			path := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	editConfig := func(key string, value any) []byte {
		var cfg map[string]any
		readJSON(t, filepath.Join(tinyE5, "config.json"), &cfg)
		cfg[key] = value
		data, _ := json.Marshal(cfg)
		return data
	}

	// A checkpoint without the second layer's key projection.
	weights, err := safetensors.ReadFile(filepath.Join(tinyE5, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	delete(weights, "encoder.layer.1.attention.self.key.weight")
	missingWeight := copyOf(map[string][]byte{"model.safetensors": nil})
	if err := safetensors.WriteFile(filepath.Join(missingWeight, "model.safetensors"), weights, nil); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		dir  string
		want string
		// loadable: IsEncoderDir accepts it (the problem is in the weights
		// or the pooling, which it does not read).
		loadable bool
	}{
		{"missing directory", filepath.Join(t.TempDir(), "absent"), "no such file", false},
		{"not a directory", file, "not a directory", false},
		{"no config.json", t.TempDir(), "no config.json", false},
		{"decoder model", fixtures.Shared(t, "hf", "qwen2"), `model_type "qwen2" is not a BERT-family encoder`, false},
		{"XLM-RoBERTa", copyOf(map[string][]byte{"config.json": editConfig("model_type", "xlm-roberta")}), `model_type "xlm-roberta": XLM-RoBERTa`, false},
		{"tanh GELU", copyOf(map[string][]byte{"config.json": editConfig("hidden_act", "gelu_new")}), `hidden_act "gelu_new"`, false},
		{"missing weight", missingWeight, "missing weight encoder.layer.1.attention.self.key.weight", true},
		{"max pooling", copyOf(map[string][]byte{"1_Pooling/config.json": []byte(`{"pooling_mode": "max"}`)}), `pooling mode "max" is not supported`, true},
		{"legacy lasttoken flag", copyOf(map[string][]byte{"1_Pooling/config.json": []byte(`{"pooling_mode_lasttoken": true}`)}), `pooling mode "lasttoken"`, true},
		{"Dense module", copyOf(map[string][]byte{"modules.json": []byte(`[{"path": "", "type": "sentence_transformers.models.Transformer"},
			{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}, {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]`)}),
			"sentence_transformers.models.Dense) is not supported", true},
		{"BPE tokenizer", copyOf(map[string][]byte{"tokenizer.json": []byte(`{"model": {"type": "BPE", "vocab": {}}}`)}), `model.type is "BPE"`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(c.dir, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open error = %v, want one containing %q", err, c.want)
			}
			err = IsEncoderDir(c.dir)
			if c.loadable && err != nil {
				t.Errorf("IsEncoderDir = %v, want nil", err)
			}
			if !c.loadable && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("IsEncoderDir = %v, want an error containing %q", err, c.want)
			}
		})
	}

	// An override replaces an unsupported pooling of the directory.
	maxPooling := copyOf(map[string][]byte{"1_Pooling/config.json": []byte(`{"pooling_mode": "max"}`)})
	if _, err := Open(maxPooling, Options{Pooling: PoolingCLS}); err != nil {
		t.Errorf("Open with Pooling cls over a max-pooling directory: %v", err)
	}
	if _, err := Open(tinyE5, Options{Pooling: "max"}); err == nil || !strings.Contains(err.Error(), `pooling "max" is not supported`) {
		t.Errorf("Open with Pooling max: %v", err)
	}
	if err := IsEncoderDir(tinyE5); err != nil {
		t.Errorf("IsEncoderDir(tiny-e5) = %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	e := openEncoder(t, encoderDir(t, "tiny-e5"), Options{BatchSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Encode(ctx, []string{"a", "b"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Encode with a cancelled context: %v", err)
	}
}

func TestInfoJSON(t *testing.T) {
	e := openEncoder(t, encoderDir(t, "tiny-bge"), Options{})
	data, err := json.Marshal(e.Info())
	if err != nil {
		t.Fatal(err)
	}
	var back Info
	if err := json.Unmarshal(data, &back); err != nil || back != e.Info() {
		t.Fatalf("Info round trip: %s -> %+v (%v)", data, back, err)
	}
	if e.Name() != "tiny-bge" || e.Dim() != 64 || back.Layers != 2 || back.VocabSize != 30522 || back.Pooling != PoolingCLS {
		t.Fatalf("Name %q, Dim %d, Info %s", e.Name(), e.Dim(), data)
	}
}

// TestManyShapesRecompile encodes more shapes than the program cache holds:
// the programs are rebuilt instead of GoMLX refusing the new shape.
func TestManyShapesRecompile(t *testing.T) {
	defer func(n int) { maxPrograms = n }(maxPrograms)
	maxPrograms = 2
	e := openEncoder(t, encoderDir(t, "tiny-e5"), Options{})
	ctx := context.Background()
	texts := []string{"short", strings.Repeat("medium length text ", 2), strings.Repeat("a much longer text ", 4), "short"}
	first, err := e.Encode(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts { // one shape per call, four calls, three shapes
		again, err := e.Encode(ctx, []string{text})
		if err != nil {
			t.Fatalf("text %d after %d shapes: %v", i, len(e.programs.shapes), err)
		}
		for j := range again[0] {
			if math.Abs(float64(again[0][j]-first[i][j])) > 1e-5 {
				t.Fatalf("text %d dim %d: %g, first %g", i, j, again[0][j], first[i][j])
			}
		}
	}
}
