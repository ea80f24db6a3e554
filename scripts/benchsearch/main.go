// Command benchsearch measures the BM25 index on a query file: open time,
// queries/s on one goroutine and on all cores, latency percentiles, recall@10
// against exhaustive scoring, and resident memory. It prints one JSON object
// and, with -hits, writes each query's top-10 document numbers for comparison
// with other engines.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ssp-project/ssp/internal/index"
)

func main() {
	dir := flag.String("index", "", "index directory")
	qfile := flag.String("queries", "", "query file, one per line")
	hitsOut := flag.String("hits", "", "write top-10 document numbers per query here")
	k := flag.Int("k", 10, "hits per query")
	flag.Parse()

	t0 := time.Now()
	ix, err := index.Open(*dir)
	if err != nil {
		log.Fatal(err)
	}
	openTime := time.Since(t0)
	defer ix.Close()
	f, err := os.Open(*qfile)
	if err != nil {
		log.Fatal(err)
	}
	var queries []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if q := strings.TrimSpace(sc.Text()); q != "" {
			queries = append(queries, q)
		}
	}
	f.Close()

	// Warm the page cache and the mapped files once.
	for _, q := range queries {
		ix.TopDocs(q, *k, false)
	}
	lat := make([]time.Duration, len(queries))
	start := time.Now()
	results := make([][]index.ScoredDoc, len(queries))
	for i, q := range queries {
		t := time.Now()
		results[i] = ix.TopDocs(q, *k, false)
		lat[i] = time.Since(t)
	}
	single := time.Since(start)
	slices.Sort(lat)

	start = time.Now()
	if _, err := ix.Search(context.Background(), queries, *k); err != nil {
		log.Fatal(err)
	}
	parallel := time.Since(start)

	start = time.Now()
	var found, total int
	for i, q := range queries {
		exact := ix.TopDocs(q, *k, true)
		got := map[uint32]bool{}
		for _, h := range results[i] {
			got[h.Doc] = true
		}
		for _, h := range exact {
			if got[h.Doc] {
				found++
			}
		}
		total += len(exact)
	}
	exhaustive := time.Since(start)

	if *hitsOut != "" {
		hf, err := os.Create(*hitsOut)
		if err != nil {
			log.Fatal(err)
		}
		w := bufio.NewWriter(hf)
		for _, r := range results {
			ids := make([]string, len(r))
			for i, h := range r {
				ids[i] = fmt.Sprint(h.Doc)
			}
			fmt.Fprintln(w, strings.Join(ids, " "))
		}
		w.Flush()
		hf.Close()
	}
	out := map[string]any{
		"engine":               "ssp",
		"docs":                 ix.NumDocs(),
		"queries":              len(queries),
		"open_ms":              float64(openTime.Microseconds()) / 1000,
		"qps_single":           float64(len(queries)) / single.Seconds(),
		"qps_all_cores":        float64(len(queries)) / parallel.Seconds(),
		"qps_exhaustive":       float64(len(queries)) / exhaustive.Seconds(),
		"gomaxprocs":           runtime.GOMAXPROCS(0),
		"p50_ms":               float64(lat[len(lat)/2].Microseconds()) / 1000,
		"p99_ms":               float64(lat[len(lat)*99/100].Microseconds()) / 1000,
		"recall_at_k":          float64(found) / float64(max(total, 1)),
		"index_bytes":          ix.Bytes(),
		"rss_kb":               procStatus("VmRSS"),
		"peak_rss_kb":          procStatus("VmHWM"),
		"rss_note":             "resident set after the runs, including touched pages of the mapped index files",
		"single_thread_timing": "TopDocs per query, document numbers only",
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
}

// procStatus returns a kB field of /proc/self/status, or -1.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var v int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &v)
			return v
		}
	}
	return -1
}
