// Command benchvector measures internal/vector against the same vectors
// that scripts/bench_vector_peer.py gives FAISS; scripts/bench_vector.sh runs
// both and writes docs/benchmarks-dense.md.
//
//	benchvector gen   -n N -nq NQ -dim D -out DIR  # base.f32, queries.f32 (raw little-endian float32)
//	benchvector build -data DIR -index IDX -dtype int8
//	benchvector hnsw  -index IDX -m 16 -efc 100
//	benchvector flat  -data DIR -index IDX         # exact search; writes IDX/../exact-<dtype>.i32
//	benchvector approx -data DIR -index IDX -ef 32,64,128
//
// Each measuring command prints one JSON object; flat and approx run in
// their own process so that their peak RSS is that of the search alone.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ssp-project/ssp/internal/vector"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchvector gen|build|hnsw|flat|approx [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	n := fs.Int("n", 100000, "base vectors (gen)")
	nq := fs.Int("nq", 1000, "queries (gen)")
	dim := fs.Int("dim", 384, "dimension (gen)")
	clusters := fs.Int("clusters", 1000, "mixture components (gen)")
	out := fs.String("out", "", "output directory (gen)")
	data := fs.String("data", "", "directory written by gen")
	index := fs.String("index", "", "index directory")
	dtype := fs.String("dtype", "int8", "int8 or float16 (build)")
	m := fs.Int("m", 16, "HNSW M")
	efc := fs.Int("efc", 100, "HNSW efConstruction")
	efs := fs.String("ef", "16,32,64,128,256", "efSearch values (approx)")
	single := fs.Int("single", 200, "queries timed one at a time")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(*out, *n, *nq, *dim, *clusters)
	case "build":
		err = build(*data, *index, vector.DType(*dtype))
	case "hnsw":
		err = buildHNSW(*index, *m, *efc)
	case "flat":
		err = flat(*data, *index, *single)
	case "approx":
		err = approx(*data, *index, *efs, *single)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchvector:", err)
		os.Exit(1)
	}
}

// gen writes n base vectors and nq queries drawn from one mixture of
// Gaussians (the package tests' generator): unit centres, each cluster
// spread along its own random 24-dimensional subspace plus small isotropic
// noise, every vector L2-normalised. Queries are fresh draws, not base
// vectors.
func gen(out string, n, nq, dim, clusters int) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	const rank = 24
	rng := rand.New(rand.NewPCG(42, 7))
	sd := 1 / math.Sqrt(float64(dim))
	centres := make([][]float64, clusters)
	bases := make([][]float64, clusters)
	for c := range centres {
		centres[c] = make([]float64, dim)
		var s float64
		for j := range centres[c] {
			centres[c][j] = rng.NormFloat64()
			s += centres[c][j] * centres[c][j]
		}
		for j := range centres[c] {
			centres[c][j] /= math.Sqrt(s)
		}
		bases[c] = make([]float64, dim*rank)
		for j := range bases[c] {
			bases[c][j] = rng.NormFloat64() * sd / math.Sqrt(rank)
		}
	}
	write := func(name string, count int) error {
		f, err := os.Create(filepath.Join(out, name+".tmp"))
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		v := make([]float64, dim)
		row := make([]float32, dim)
		z := make([]float64, rank)
		for range count {
			c := rng.IntN(clusters)
			for r := range z {
				z[r] = rng.NormFloat64()
			}
			var s float64
			for j := range v {
				x := centres[c][j] + 0.2*sd*rng.NormFloat64()
				b := bases[c][j*rank : (j+1)*rank]
				for r, zr := range z {
					x += b[r] * zr
				}
				v[j] = x
				s += x * x
			}
			for j := range v {
				row[j] = float32(v[j] / math.Sqrt(s))
			}
			if err := binary.Write(w, binary.LittleEndian, row); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(filepath.Join(out, name+".tmp"), filepath.Join(out, name))
	}
	if err := write("base.f32", n); err != nil {
		return err
	}
	if err := write("queries.f32", nq); err != nil {
		return err
	}
	info, _ := json.Marshal(map[string]int{"n": n, "nq": nq, "dim": dim, "clusters": clusters})
	return os.WriteFile(filepath.Join(out, "info.json"), info, 0o644)
}

type info struct{ N, NQ, Dim int }

func readInfo(data string) (info, error) {
	var i info
	raw, err := os.ReadFile(filepath.Join(data, "info.json"))
	if err == nil {
		err = json.Unmarshal(raw, &i)
	}
	return i, err
}

// readRows streams a raw float32 file in batches of rows.
func readRows(path string, dim, batch int, fn func([][]float32) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	buf := make([]float32, batch*dim)
	for {
		rows := make([][]float32, 0, batch)
		for len(rows) < batch {
			row := buf[len(rows)*dim : (len(rows)+1)*dim]
			if err := binary.Read(r, binary.LittleEndian, row); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		if len(rows) == 0 {
			return nil
		}
		if err := fn(rows); err != nil {
			return err
		}
	}
}

func build(data, index string, dtype vector.DType) error {
	inf, err := readInfo(data)
	if err != nil {
		return err
	}
	os.RemoveAll(index)
	start := time.Now()
	w, err := vector.Create(index, inf.Dim, dtype)
	if err != nil {
		return err
	}
	if err := readRows(filepath.Join(data, "base.f32"), inf.Dim, 10000, w.Add); err != nil {
		return err
	}
	if err := w.Finish(json.RawMessage(`{"encoder":"synthetic mixture"}`)); err != nil {
		return err
	}
	return emit(map[string]any{"engine": "ssp", "phase": "build", "dtype": dtype, "n": inf.N,
		"build_s": time.Since(start).Seconds(), "peak_rss_kb": hwm()})
}

func buildHNSW(index string, m, efc int) error {
	ix, err := vector.Open(index)
	if err != nil {
		return err
	}
	defer ix.Close()
	start := time.Now()
	if err := ix.BuildHNSW(vector.HNSWOptions{M: m, EfConstruction: efc}, os.Stderr); err != nil {
		return err
	}
	return emit(map[string]any{"engine": "ssp", "phase": "hnsw_build", "dtype": ix.DType(), "n": ix.Len(),
		"m": m, "ef_construction": efc, "build_s": time.Since(start).Seconds(), "peak_rss_kb": hwm()})
}

func readQueries(data string) ([][]float32, []int32, error) {
	inf, err := readInfo(data)
	if err != nil {
		return nil, nil, err
	}
	var qs [][]float32
	err = readRows(filepath.Join(data, "queries.f32"), inf.Dim, inf.NQ, func(rows [][]float32) error {
		for _, r := range rows {
			qs = append(qs, append([]float32(nil), r...))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	truth, err := readIDs(filepath.Join(data, "truth.i32"))
	return qs, truth, err
}

// readIDs reads k=10 neighbour ids per query (int32), the exact float32
// answer FAISS's flat index gives.
func readIDs(path string) ([]int32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ids := make([]int32, len(raw)/4)
	for i := range ids {
		ids[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return ids, nil
}

func recall(res [][]vector.Result, truth []int32) float64 {
	hit := 0
	for i, rs := range res {
		want := map[int32]bool{}
		for _, id := range truth[10*i : 10*i+10] {
			want[id] = true
		}
		for _, r := range rs {
			if want[int32(r.ID)] {
				hit++
			}
		}
	}
	return float64(hit) / float64(10*len(res))
}

func flat(data, index string, single int) error {
	qs, truth, err := readQueries(data)
	if err != nil {
		return err
	}
	ix, err := vector.Open(index)
	if err != nil {
		return err
	}
	defer ix.Close()
	ix.Search(qs[:4], 10) // fault the mapping in once
	ns := min(single, len(qs))
	start := time.Now()
	for _, q := range qs[:ns] {
		if _, err := ix.Search([][]float32{q}, 10); err != nil {
			return err
		}
	}
	b1 := float64(ns) / time.Since(start).Seconds()
	start = time.Now()
	var res [][]vector.Result
	for lo := 0; lo < len(qs); lo += 64 {
		r, err := ix.Search(qs[lo:min(lo+64, len(qs))], 10)
		if err != nil {
			return err
		}
		res = append(res, r...)
	}
	b64 := float64(len(qs)) / time.Since(start).Seconds()
	// Our own exact answer, for the recall of our HNSW against it.
	var buf []byte
	for _, rs := range res {
		for _, r := range rs {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(r.ID))
		}
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(index), "exact-"+string(ix.DType())+".i32"), buf, 0o644); err != nil {
		return err
	}
	return emit(map[string]any{"engine": "ssp", "phase": "flat", "dtype": ix.DType(), "n": ix.Len(),
		"qps_batch1": b1, "qps_batch64": b64, "recall10_vs_float32_exact": recall(res, truth),
		"peak_rss_kb": hwm(), "threads": runtime.GOMAXPROCS(0)})
}

func approx(data, index, efs string, single int) error {
	qs, truth, err := readQueries(data)
	if err != nil {
		return err
	}
	ix, err := vector.Open(index)
	if err != nil {
		return err
	}
	defer ix.Close()
	own, err := readIDs(filepath.Join(filepath.Dir(index), "exact-"+string(ix.DType())+".i32"))
	if err != nil {
		return err
	}
	var rows []map[string]any
	for _, f := range strings.Split(efs, ",") {
		ef, err := strconv.Atoi(f)
		if err != nil {
			return err
		}
		ix.SearchApprox(qs[:min(50, len(qs))], 10, ef) // warm the pages
		ns := min(single*5, len(qs))
		start := time.Now()
		for _, q := range qs[:ns] {
			if _, err := ix.SearchApprox([][]float32{q}, 10, ef); err != nil {
				return err
			}
		}
		b1 := float64(ns) / time.Since(start).Seconds()
		start = time.Now()
		res, err := ix.SearchApprox(qs, 10, ef)
		if err != nil {
			return err
		}
		batch := float64(len(qs)) / time.Since(start).Seconds()
		rows = append(rows, map[string]any{"ef_search": ef, "qps_batch1": b1, "qps_batch_all": batch,
			"recall10_vs_float32_exact": recall(res, truth), "recall10_vs_own_exact": recall(res, own)})
	}
	return emit(map[string]any{"engine": "ssp", "phase": "hnsw", "dtype": ix.DType(), "n": ix.Len(),
		"rows": rows, "peak_rss_kb": hwm(), "threads": runtime.GOMAXPROCS(0)})
}

// hwm is the process's peak resident set (VmHWM), in KiB.
func hwm() int64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

func emit(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(data))
	return err
}
