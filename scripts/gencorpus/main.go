// Command gencorpus writes a synthetic corpus in Search-R1 JSONL form for
// benchmarks: passages of Zipf-distributed words "w<rank>" (which every BM25
// tokenizer and stemmer leaves unchanged, so different engines see the same
// terms), and a query file of words drawn from random passages.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"strconv"
)

func main() {
	n := flag.Int("n", 200000, "number of passages")
	words := flag.Int("words", 100, "mean words per passage")
	vocab := flag.Int("vocab", 500000, "vocabulary size")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("out", "-", "corpus file (- for stdout)")
	queries := flag.String("queries", "", "also write --nq queries, one per line, to this file")
	nq := flag.Int("nq", 1000, "number of queries")
	flag.Parse()

	r := rand.New(rand.NewPCG(*seed, 7))
	z := rand.NewZipf(r, 1.07, 3, uint64(*vocab-1))
	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var qw *bufio.Writer
	qEvery := 0
	if *queries != "" {
		f, err := os.Create(*queries)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		qw = bufio.NewWriter(f)
		defer qw.Flush()
		qEvery = max(1, *n / *nq)
	}
	line := make([]byte, 0, 4096)
	text := make([]uint64, 0, 256)
	for i := range *n {
		text = text[:0]
		for range *words/2 + r.IntN(*words+1) {
			text = append(text, z.Uint64())
		}
		line = append(line[:0], `{"id":"`...)
		line = strconv.AppendInt(line, int64(i), 10)
		line = append(line, `","contents":"\"Passage w`...)
		line = strconv.AppendUint(line, text[0], 10)
		line = append(line, `\"\n`...)
		for j, t := range text {
			if j > 0 {
				line = append(line, ' ')
			}
			line = append(line, 'w')
			line = strconv.AppendUint(line, t, 10)
		}
		line = append(line, "\"}\n"...)
		bw.Write(line)
		if qw != nil && i%qEvery == 0 {
			// A query: 2 to 8 words of this passage, as a question would reuse
			// a few words of the passage holding its answer.
			k := 2 + r.IntN(7)
			for j := range k {
				if j > 0 {
					qw.WriteByte(' ')
				}
				fmt.Fprintf(qw, "w%d", text[r.IntN(len(text))])
			}
			qw.WriteByte('\n')
		}
	}
	if err := bw.Flush(); err != nil {
		log.Fatal(err)
	}
}
