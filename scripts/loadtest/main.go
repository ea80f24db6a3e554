// Command loadtest measures `ssp search serve` on loopback: it generates a
// synthetic corpus, builds a BM25 index of it (package index), serves it with
// search.Server on 127.0.0.1, drives it with concurrent search.Clients for a
// fixed number of requests (bounded by a time limit too) and writes the
// figures as Markdown.
//
//	go run ./scripts/loadtest -out docs/benchmarks-search-server.md
package main

import (
	"context"
	"flag"
	"fmt"
	"iter"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssp-project/ssp/internal/index"
	"github.com/ssp-project/ssp/internal/search"
)

func main() {
	docs := flag.Int("docs", 100_000, "documents in the generated corpus")
	vocab := flag.Int("vocab", 50_000, "distinct words in the generated corpus")
	clients := flag.Int("clients", 64, "concurrent clients")
	requests := flag.Int("requests", 20_000, "requests in all")
	queries := flag.Int("queries", 1, "queries per request")
	topK := flag.Int("topk", 3, "hits per query")
	limit := flag.Duration("limit", 2*time.Minute, "stop sending after this long")
	out := flag.String("out", "", "write the Markdown report here as well as to stdout")
	flag.Parse()
	if err := run(*docs, *vocab, *clients, *requests, *queries, *topK, *limit, *out); err != nil {
		log.Fatal(err)
	}
}

// words returns a fixed pseudo-vocabulary; words are drawn with a Zipf law so
// that postings lists have realistic, skewed lengths.
func words(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyz"
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 3+r.IntN(7))
		for j := range b {
			b[j] = letters[r.IntN(len(letters))]
		}
		out[i] = string(b) + fmt.Sprint(i)
	}
	return out
}

func corpus(n int, vocab []string) iter.Seq2[search.Document, error] {
	return func(yield func(search.Document, error) bool) {
		r := rand.New(rand.NewPCG(3, 4))
		z := rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
		var b strings.Builder
		for i := range n {
			b.Reset()
			fmt.Fprintf(&b, "\"%s %s\"\n", vocab[z.Uint64()], vocab[z.Uint64()])
			for j := range 60 + r.IntN(60) {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(vocab[z.Uint64()])
			}
			if !yield(search.Document{ID: fmt.Sprint(i), Contents: b.String()}, nil) {
				return
			}
		}
	}
}

func run(nDocs, nVocab, nClients, nRequests, nQueries, topK int, limit time.Duration, out string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ssp-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	vocab := words(nVocab)
	idxDir := filepath.Join(dir, "index")
	stats, err := index.Build(ctx, corpus(nDocs, vocab), idxDir, index.DefaultOptions())
	if err != nil {
		return fmt.Errorf("building index: %w", err)
	}
	ix, err := index.Open(idxDir)
	if err != nil {
		return err
	}
	defer ix.Close()

	cfg := search.DefaultServerConfig()
	cfg.Concurrency = runtime.GOMAXPROCS(0)
	cfg.Queue = 2 * nClients // every client can wait: errors then mean real failures
	srv, err := search.NewServer(ix, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	client, err := search.NewClient("http://"+ln.Addr().String(), search.ClientOptions{Timeout: 30 * time.Second, MaxRetries: -1})
	if err != nil {
		return err
	}

	// Queries are 2-4 words drawn like the corpus words, as agents' queries are short.
	qr := rand.New(rand.NewPCG(5, 6))
	qz := rand.NewZipf(qr, 1.1, 2, uint64(nVocab-1))
	pool := make([][]string, 4096)
	for i := range pool {
		for range nQueries {
			n := 2 + qr.IntN(3)
			q := make([]string, n)
			for j := range q {
				q[j] = vocab[qz.Uint64()]
			}
			pool[i] = append(pool[i], strings.Join(q, " "))
		}
	}

	var (
		next     atomic.Int64
		errCount atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, nRequests)
		wg       sync.WaitGroup
	)
	loadAvg := "unknown"
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		loadAvg = strings.Fields(string(data) + " ?")[0]
	}
	deadline := time.Now().Add(limit)
	start := time.Now()
	for range nClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, nRequests/nClients+1)
			for {
				i := next.Add(1) - 1
				if i >= int64(nRequests) || time.Now().After(deadline) {
					break
				}
				t := time.Now()
				hits, err := client.Search(ctx, pool[i%int64(len(pool))], topK)
				d := time.Since(t)
				if err == nil && len(hits) != nQueries {
					err = fmt.Errorf("%d result lists for %d queries", len(hits), nQueries)
				}
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	if err := <-served; err != nil {
		return err
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	sent := len(lat) + int(errCount.Load())

	var b strings.Builder
	fmt.Fprintf(&b, "# Search server benchmark\n\n")
	fmt.Fprintf(&b, "Produced by `go run ./scripts/loadtest -out docs/benchmarks-search-server.md` (server and clients in one process, over loopback TCP).\n\n")
	fmt.Fprintf(&b, "Machine: %s, %d CPUs (`nproc`), GOMAXPROCS %d, %s %s/%s; 1-minute load average %s when the load started.\n\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, loadAvg)
	fmt.Fprintf(&b, "Searcher: the embedded BM25 index (package index), built from a generated corpus of %d documents (60-120 Zipf-distributed words each, %d-word vocabulary; %d terms, %.1f MB, built in %v).\n\n",
		stats.NumDocs, nVocab, stats.NumTerms, float64(stats.Bytes)/1e6, stats.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "Load: %d concurrent clients (search.Client, no retries), %d requests of %d quer%s each (2-4 words), topk %d, return_scores true; server concurrency %d, queue %d.\n\n",
		nClients, sent, nQueries, map[bool]string{true: "y", false: "ies"}[nQueries == 1], topK, cfg.Concurrency, cfg.Queue)
	fmt.Fprintf(&b, "| requests | errors | req/s | queries/s | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %.0f | %.0f | %v | %v | %v | %v |\n", sent, errCount.Load(),
		float64(len(lat))/elapsed.Seconds(), float64(len(lat)*nQueries)/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.90).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	fmt.Fprintf(&b, "\nClients, server and index share the same CPUs, so these figures are a lower bound for the server alone. Latency is measured by each client from sending the request to decoding the answer.\n")
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(&b, "\nFirst error: %s\n", e)
	}
	if sent < nRequests {
		fmt.Fprintf(&b, "\nStopped by the %v time limit after %d of %d requests.\n", limit, sent, nRequests)
	}
	fmt.Print(b.String())
	if out != "" {
		tmp := out + ".tmp"
		if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, out)
	}
	return nil
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
