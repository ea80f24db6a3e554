// Command serveload measures a running `ssp serve` on loopback: for each
// number of concurrent clients it sends a fixed number of chat completion
// requests (bounded by a time limit too), each client one request at a
// time, and reports the tokens generated per second over the run, the
// latency percentiles and the errors, as Markdown.
//
//	ssp serve --addr 127.0.0.1:8080 &
//	go run ./scripts/serveload -url http://127.0.0.1:8080 -clients 1,16 -out report.md
//
// Chat requests ask for -max-tokens tokens past EOS (ignore_eos), so every
// request generates the same number; agent requests (-mode agent) ask the
// built-in benchmark's questions (-questions FILE) greedily, as `ssp eval`
// does.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "base URL of the server")
	model := flag.String("model", "builtin", "model name (chat mode) or its base (agent mode adds -agent)")
	mode := flag.String("mode", "chat", "chat or agent")
	clientList := flag.String("clients", "1,16", "comma-separated numbers of concurrent clients, one run each")
	requests := flag.Int("requests", 64, "requests per run")
	maxTokens := flag.Int("max-tokens", 64, "new tokens per chat request")
	questions := flag.String("questions", "", "JSONL file with a \"question\" per line, for agent mode")
	limit := flag.Duration("limit", 2*time.Minute, "stop sending after this long in a run")
	out := flag.String("out", "", "write the Markdown report here as well as to stdout")
	flag.Parse()

	var qs []string
	if *mode == "agent" {
		var err error
		if qs, err = readQuestions(*questions); err != nil {
			log.Fatal(err)
		}
	} else if *mode != "chat" {
		log.Fatalf("-mode %q: want chat or agent", *mode)
	}
	var runs []result
	for _, f := range strings.Split(*clientList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("-clients: %q is not a positive number", f)
		}
		r := run(*url, *model, *mode, qs, n, *requests, *maxTokens, *limit)
		log.Printf("%d clients: %d requests, %d errors, %.1f tokens/s", n, r.requests, r.errors, r.tokensPerSecond())
		runs = append(runs, r)
	}
	report := markdown(runs, *mode, *maxTokens)
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

type result struct {
	clients, requests, errors int
	tokens                    int64
	wall                      time.Duration
	latencies                 []time.Duration
	firstError                string
}

func (r result) tokensPerSecond() float64 { return float64(r.tokens) / r.wall.Seconds() }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// run sends requests from n clients and measures them.
func run(url, model, mode string, questions []string, n, requests, maxTokens int, limit time.Duration) result {
	client := &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var next atomic.Int64
	var mu sync.Mutex
	res := result{clients: n}
	deadline := time.Now().Add(limit)
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				body := map[string]any{"model": model, "max_tokens": maxTokens, "ignore_eos": true, "seed": i,
					"messages": []map[string]string{{"role": "user", "content": "Tell me about the Goba Guild."}}}
				if mode == "agent" {
					body = map[string]any{"model": model + "-agent",
						"messages": []map[string]string{{"role": "user", "content": questions[i%len(questions)]}}}
				}
				t0 := time.Now()
				tokens, err := complete(client, url, body)
				took := time.Since(t0)
				mu.Lock()
				res.requests++
				if err != nil {
					res.errors++
					if res.firstError == "" {
						res.firstError = err.Error()
					}
				} else {
					res.tokens += int64(tokens)
					res.latencies = append(res.latencies, took)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	slices.Sort(res.latencies)
	return res
}

// complete posts one request and returns the completion tokens.
func complete(client *http.Client, url string, body map[string]any) (int, error) {
	data, _ := json.Marshal(body)
	resp, err := client.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	var c struct {
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return 0, err
	}
	return c.Usage.CompletionTokens, nil
}

func readQuestions(path string) ([]string, error) {
	if path == "" {
		return nil, fmt.Errorf("-mode agent needs -questions FILE")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var qs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ex struct {
			Question string `json:"question"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		qs = append(qs, ex.Question)
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no questions", path)
	}
	return qs, sc.Err()
}

func markdown(runs []result, mode string, maxTokens int) string {
	var b strings.Builder
	what := fmt.Sprintf("chat completions of %d tokens each (ignore_eos)", maxTokens)
	if mode == "agent" {
		what = "agent questions (greedy, the built-in agent bounds)"
	}
	fmt.Fprintf(&b, "%s; client on the same machine (%d CPUs, %s/%s).\n\n", what, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintln(&b, "| clients | requests | errors | tokens | wall s | tokens/s | p50 latency s | p99 latency s |")
	fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range runs {
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %.1f | %.1f | %.2f | %.2f |\n", r.clients, r.requests, r.errors, r.tokens,
			r.wall.Seconds(), r.tokensPerSecond(), percentile(r.latencies, 0.5).Seconds(), percentile(r.latencies, 0.99).Seconds())
	}
	for _, r := range runs {
		if r.firstError != "" {
			fmt.Fprintf(&b, "\nfirst error with %d clients: %s\n", r.clients, r.firstError)
		}
	}
	return b.String()
}
