package index

import (
	"math"
	"math/bits"
)

// This file holds BM25 exactly as Lucene 8+ computes it (BM25Similarity),
// which is what Pyserini's default searcher uses:
//
//	idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
//	score(t, d) = idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))
//
// in float32 arithmetic, where avgdl is the exact mean document length and dl
// is the document length after a lossy round trip through one byte
// (SmallFloat.intToByte4 / byte4ToInt). Lucene 8 dropped the (k1 + 1) factor
// of the textbook formula; it does not change rankings.

// numFreeValues is SmallFloat.NUM_FREE_VALUES: lengths below it are stored exactly.
const numFreeValues = 255 - 231 // 231 = longToInt4(math.MaxInt32)

// longToInt4 is Lucene's SmallFloat.longToInt4: a float-like encoding with
// a 3-bit mantissa and an implicit leading bit.
func longToInt4(i uint64) uint32 {
	numBits := 64 - bits.LeadingZeros64(i)
	if numBits < 4 {
		return uint32(i)
	}
	shift := numBits - 4
	encoded := uint32(i>>uint(shift)) & 0x07
	encoded |= uint32(shift+1) << 3
	return encoded
}

// int4ToLong is Lucene's SmallFloat.int4ToLong.
func int4ToLong(i uint32) uint64 {
	bits := uint64(i & 0x07)
	shift := int(i>>3) - 1
	if shift == -1 {
		return bits
	}
	return (bits | 0x08) << uint(shift)
}

// lengthToNorm is Lucene's SmallFloat.intToByte4.
func lengthToNorm(length int) byte {
	if length < numFreeValues {
		return byte(length)
	}
	if length > math.MaxInt32 {
		length = math.MaxInt32
	}
	return byte(numFreeValues + longToInt4(uint64(length-numFreeValues)))
}

// normToLength is Lucene's SmallFloat.byte4ToInt.
func normToLength(norm byte) int {
	if int(norm) < numFreeValues {
		return int(norm)
	}
	decoded := uint64(numFreeValues) + int4ToLong(uint32(norm)-numFreeValues)
	return int(min(decoded, math.MaxInt32))
}

// scorer holds what BM25 needs from collection statistics.
type scorer struct {
	numDocs   int64
	normCache [256]float32 // 1 / (k1 * (1 - b + b * dl / avgdl)) per norm byte
}

func newScorer(k1, b float64, numDocs, sumTotalTermFreq int64) *scorer {
	s := &scorer{numDocs: numDocs}
	avgdl := float32(1)
	if numDocs > 0 && sumTotalTermFreq > 0 {
		avgdl = float32(float64(sumTotalTermFreq) / float64(numDocs))
	}
	k1f, bf := float32(k1), float32(b)
	for i := range s.normCache {
		dl := float32(normToLength(byte(i)))
		s.normCache[i] = 1 / (k1f * ((1 - bf) + bf*float32(dl/avgdl)))
	}
	return s
}

// idf is Lucene's BM25Similarity.idf.
func (s *scorer) idf(df int64) float32 {
	return float32(math.Log(1 + (float64(s.numDocs-df)+0.5)/(float64(df)+0.5)))
}

// score is one term's contribution; weight is idf times the query term count.
// The explicit conversions keep the compiler from fusing operations so that
// every caller gets bit-identical results.
func (s *scorer) score(weight float32, tf uint32, norm byte) float32 {
	x := float32(float32(tf) * s.normCache[norm])
	return weight - float32(weight/(1+x))
}
