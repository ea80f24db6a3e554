package encoder

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// benchPassages are n passages of about 100 words, the same texts that
// scripts/bench_encoder_peer.py builds for sentence-transformers.
func benchPassages(n int) []string {
	words := strings.Fields("the of and to in is was for on that with as by at from his her which are this " +
		"be or an had not but were they have one their all has been more when who will would there")
	passages := make([]string, n)
	for i := range passages {
		var b strings.Builder
		fmt.Fprintf(&b, "Passage %d:", i)
		for j := range 100 {
			b.WriteByte(' ')
			b.WriteString(words[(i*7+j*13+j*j)%len(words)])
		}
		passages[i] = b.String()
	}
	return passages
}

// BenchmarkEncode measures passages per second for all-MiniLM-L6-v2 on 64
// passages of about 100 words, 32 per batch. Compare with
// scripts/bench_encoder_peer.py.
func BenchmarkEncode(b *testing.B) {
	e := openEncoder(b, encoderDir(b, "all-MiniLM-L6-v2"), Options{BatchSize: 32})
	passages := benchPassages(64)
	ctx := context.Background()
	if _, err := e.EncodePassages(ctx, passages); err != nil { // compiles the programs
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := e.EncodePassages(ctx, passages); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(passages)*b.N)/b.Elapsed().Seconds(), "passages/s")
}
