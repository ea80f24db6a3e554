package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ssp-project/ssp/internal/search"
)

func init() {
	register(command{name: "search serve", summary: "serve a BM25 index over a Search-R1-compatible /retrieve API", run: runSearchServe})
}

func runSearchServe(ctx context.Context, args []string) error {
	defaults := search.DefaultServerConfig()
	fs := newFlags("search serve", "--index DIR [--ranking bm25|dense|hybrid] [--addr 127.0.0.1:8000] [--topk 3] [--max-topk 100] [--request-memory 64MiB] [--max-queries N] [--max-body 8MiB] [--concurrency N] [--queue N]")
	dir := fs.String("index", "", "index directory built by ssp index build")
	addr := fs.String("addr", "127.0.0.1:8000", "listen address; loopback by default, use 0.0.0.0:PORT to accept other machines")
	topK := fs.Int("topk", defaults.DefaultTopK, "hits per query when a request has no topk")
	maxTopK := fs.Int("max-topk", defaults.MaxTopK, "largest topk a request may ask for")
	maxQueries := fs.Int("max-queries", defaults.MaxQueries, "most queries in one request (0: as many as --request-memory admits at the request's topk)")
	reqMemory := fs.String("request-memory", "64MiB", "memory one request's answer may take, about 1 KiB per hit: 64MiB admits 21845 queries at topk 3")
	maxBody := fs.String("max-body", "8MiB", "largest request body (bytes, or with KiB/MiB/GiB suffix)")
	concurrency := fs.Int("concurrency", runtime.GOMAXPROCS(0), "requests searched at the same time")
	queue := fs.Int("queue", defaults.Queue, "requests allowed to wait for a search slot; more are refused with 503")
	drain := fs.Duration("drain-timeout", defaults.DrainTimeout, "on SIGTERM, how long to keep answering on open connections, each answer with Connection: close, before closing idle ones")
	shutdown := fs.Duration("shutdown-timeout", defaults.ShutdownTimeout, "how long to let requests in flight finish on SIGTERM")
	backend := fs.String("backend", "", "compute backend of the query encoder (--ranking dense or hybrid): "+backendHelp)
	ranking := addRankingFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *dir == "" {
		return fmt.Errorf("%w: --index is required", errUsage)
	}
	bodyBytes, err := parseByteSize(*maxBody)
	if err != nil {
		return fmt.Errorf("%w: --max-body: %v", errUsage, err)
	}
	memBytes, err := parseByteSize(*reqMemory)
	if err != nil {
		return fmt.Errorf("%w: --request-memory: %v", errUsage, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := search.ServerConfig{
		DefaultTopK:     *topK,
		MaxTopK:         *maxTopK,
		MaxQueries:      *maxQueries,
		RequestMemory:   memBytes,
		MaxBodyBytes:    bodyBytes,
		Concurrency:     *concurrency,
		Queue:           *queue,
		DrainTimeout:    *drain,
		ShutdownTimeout: *shutdown,
		Logger:          log,
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	searcher, ix, closeIndex, err := ranking.open(*dir, *backend)
	if err != nil {
		return err
	}
	defer closeIndex()
	srv, err := search.NewServer(searcher, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", *addr, err)
	}
	url := "http://" + ln.Addr().String() + "/retrieve"
	log.Info("search server ready", "url", url, "index", *dir, "ranking", ranking.Ranking, "docs", ix.NumDocs(),
		"topk", cfg.DefaultTopK, "max_queries_at_topk", cfg.QueryLimit(cfg.DefaultTopK), "concurrency", cfg.Concurrency, "queue", cfg.Queue)
	fmt.Println(url)
	start := time.Now()
	err = srv.Serve(ctx, ln)
	log.Info("search server stopped", "uptime", time.Since(start).Round(time.Second).String())
	return err
}

// parseByteSize reads "1048576", "512KiB", "1MiB", "1GiB" (also KB/MB/GB as
// powers of 1000).
func parseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q: want a positive size such as 1048576 or 1MiB", s)
	}
	return n * mult, nil
}
