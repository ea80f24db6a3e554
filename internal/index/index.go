// Package index is ssp's embedded BM25 search engine: it builds an inverted
// index from a stream of documents and answers batches of queries with the
// same scores as Lucene/Pyserini's BM25, using block-max MaxScore pruning
// that returns exactly the top-k of exhaustive scoring.
package index

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ssp-project/ssp/internal/mmapfile"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ssp-project/ssp/internal/search"
)

// Index is an opened, read-only BM25 index; its files are memory-mapped.
// It is safe for concurrent use.
type Index struct {
	dir    string
	meta   meta
	sc     *scorer
	maps   [][]byte
	docs   []byte
	offs   []byte
	norms  []byte
	terms  []byte
	strs   []byte
	blocks []byte
	posts  []byte
}

// ErrCorrupt is wrapped by errors about damaged index files.
var ErrCorrupt = errors.New("index damaged")

// Open maps the index in dir and checks its header and the sizes and
// structure of its files. It does not read the files in full; use Verify for
// checksums.
func Open(dir string) (*Index, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	ix := &Index{dir: dir}
	if err := json.Unmarshal(raw, &ix.meta); err != nil {
		return nil, fmt.Errorf("index %s: %s: %w: %v", dir, metaFile, ErrCorrupt, err)
	}
	m := &ix.meta
	if m.Format != formatName {
		return nil, fmt.Errorf("index %s: %s: format %q is not %q", dir, metaFile, m.Format, formatName)
	}
	if m.Version != formatVersion {
		return nil, fmt.Errorf("index %s: %s: format version %d, this program reads version %d", dir, metaFile, m.Version, formatVersion)
	}
	if m.BlockSize != blockSize || m.NumDocs < 0 || m.NumTerms < 0 || m.NumBlocks < 0 {
		return nil, fmt.Errorf("index %s: %s: %w: bad counts or block size", dir, metaFile, ErrCorrupt)
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
		size int64 // expected size, -1 when only the recorded size can be checked
	}{
		{docsFile, &ix.docs, -1},
		{docOffsFile, &ix.offs, 8 * (m.NumDocs + 1)},
		{normsFile, &ix.norms, m.NumDocs},
		{termsFile, &ix.terms, termRecordSize * m.NumTerms},
		{termStrsFile, &ix.strs, -1},
		{blocksFile, &ix.blocks, blockRecSize * m.NumBlocks},
		{postingsFile, &ix.posts, -1},
	} {
		fi, ok := m.Files[f.name]
		if !ok {
			ix.Close()
			return nil, fmt.Errorf("index %s: %s: %w: no entry for %s", dir, metaFile, ErrCorrupt, f.name)
		}
		if f.size >= 0 && fi.Size != f.size {
			ix.Close()
			return nil, fmt.Errorf("index %s: %s: %w: recorded size %d, counts imply %d", dir, f.name, ErrCorrupt, fi.Size, f.size)
		}
		data, err := mmapfile.Map(filepath.Join(dir, f.name), fi.Size, ErrCorrupt)
		if err != nil {
			ix.Close()
			return nil, fmt.Errorf("index %s: %w", dir, err)
		}
		if data != nil {
			ix.maps = append(ix.maps, data)
		}
		*f.dst = data
	}
	if err := ix.checkStructure(); err != nil {
		ix.Close()
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	ix.sc = newScorer(m.K1, m.B, m.NumDocs, m.SumTotalTermFreq)
	return ix, nil
}

// checkStructure verifies cheap invariants that decoding relies on, so that
// a damaged index fails here rather than with out-of-range reads later.
func (ix *Index) checkStructure() error {
	m := &ix.meta
	le := binary.LittleEndian
	if le.Uint64(ix.offs[0:]) != 0 || le.Uint64(ix.offs[8*m.NumDocs:]) != uint64(len(ix.docs)) {
		return fmt.Errorf("%s: %w: offsets do not span %s", docOffsFile, ErrCorrupt, docsFile)
	}
	var prevBlock uint64
	var prevEnd uint64
	for i := int64(0); i < m.NumTerms; i++ {
		r := ix.terms[i*termRecordSize:]
		off, n, df, fb := le.Uint64(r), uint64(le.Uint32(r[8:])), uint64(le.Uint32(r[12:])), le.Uint64(r[16:])
		if off != prevEnd || off+n > uint64(len(ix.strs)) || df == 0 || df > uint64(m.NumDocs) || fb != prevBlock {
			return fmt.Errorf("%s: %w: bad record for term %d", termsFile, ErrCorrupt, i)
		}
		prevEnd = off + n
		prevBlock = fb + (df+blockSize-1)/blockSize
	}
	if prevBlock != uint64(m.NumBlocks) || prevEnd != uint64(len(ix.strs)) {
		return fmt.Errorf("%s: %w: term records do not cover %s and %s", termsFile, ErrCorrupt, termStrsFile, blocksFile)
	}
	var prevOff uint64
	for i := int64(0); i < m.NumBlocks; i++ {
		off := le.Uint64(ix.blocks[i*blockRecSize+8:])
		if off < prevOff || off > uint64(len(ix.posts)) {
			return fmt.Errorf("%s: %w: bad postings offset in block %d", blocksFile, ErrCorrupt, i)
		}
		prevOff = off
	}
	return nil
}

// Verify recomputes the checksum of every index file and compares it with
// the header.
func (ix *Index) Verify() error {
	for name, data := range map[string][]byte{
		docsFile: ix.docs, docOffsFile: ix.offs, normsFile: ix.norms, termsFile: ix.terms,
		termStrsFile: ix.strs, blocksFile: ix.blocks, postingsFile: ix.posts,
	} {
		if got, want := crc32.Checksum(data, castagnoli), ix.meta.Files[name].CRC32C; got != want {
			return fmt.Errorf("index %s: %s: %w: checksum %08x, header records %08x", ix.dir, name, ErrCorrupt, got, want)
		}
	}
	return nil
}

// Close unmaps the index files. The Index must not be used afterwards.
func (ix *Index) Close() error {
	var first error
	for _, m := range ix.maps {
		if err := syscall.Munmap(m); err != nil && first == nil {
			first = fmt.Errorf("index %s: munmap: %w", ix.dir, err)
		}
	}
	ix.maps = nil
	return first
}

// NumDocs returns the number of documents in the index.
func (ix *Index) NumDocs() int { return int(ix.meta.NumDocs) }

// NumTerms returns the number of distinct terms in the index.
func (ix *Index) NumTerms() int { return int(ix.meta.NumTerms) }

// Analyzer returns the analyzer the index was built with.
func (ix *Index) Analyzer() Analyzer { return ix.meta.Analyzer }

// Params returns the BM25 parameters k1 and b of the index.
func (ix *Index) Params() (k1, b float64) { return ix.meta.K1, ix.meta.B }

// Dir returns the index directory.
func (ix *Index) Dir() string { return ix.dir }

// DocsChecksum returns the CRC-32C of the document store, recorded at build
// time: what is stored beside the index about its documents (dense vectors)
// records it to tell when the index was rebuilt from another corpus.
func (ix *Index) DocsChecksum() uint32 { return ix.meta.Files[docsFile].CRC32C }

// Bytes returns the total size of the index files.
func (ix *Index) Bytes() int64 {
	var n int64
	for _, fi := range ix.meta.Files {
		n += fi.Size
	}
	return n
}

// Document returns document i (0 <= i < NumDocs) from the document store.
func (ix *Index) Document(i int) (search.Document, error) {
	if i < 0 || i >= ix.NumDocs() {
		return search.Document{}, fmt.Errorf("index %s: document %d out of range [0, %d)", ix.dir, i, ix.NumDocs())
	}
	le := binary.LittleEndian
	start, end := le.Uint64(ix.offs[8*i:]), le.Uint64(ix.offs[8*i+8:])
	if start > end || end > uint64(len(ix.docs)) {
		return search.Document{}, fmt.Errorf("index %s: %s: %w: bad offsets for document %d", ix.dir, docOffsFile, ErrCorrupt, i)
	}
	rec := ix.docs[start:end]
	n, k := binary.Uvarint(rec)
	if k <= 0 || uint64(k)+n > uint64(len(rec)) {
		return search.Document{}, fmt.Errorf("index %s: %s: %w: bad record for document %d", ix.dir, docsFile, ErrCorrupt, i)
	}
	return search.Document{ID: string(rec[k : k+int(n)]), Contents: string(rec[k+int(n):])}, nil
}

// termInfo is a dictionary entry.
type termInfo struct {
	df         uint32
	firstBlock uint64
}

// lookup finds a term by binary search over the sorted dictionary.
func (ix *Index) lookup(term string) (termInfo, bool) {
	le := binary.LittleEndian
	t := []byte(term)
	lo, hi := 0, int(ix.meta.NumTerms)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		r := ix.terms[mid*termRecordSize:]
		off, n := le.Uint64(r), uint64(le.Uint32(r[8:]))
		switch c := bytes.Compare(ix.strs[off:off+n], t); {
		case c == 0:
			return termInfo{df: le.Uint32(r[12:]), firstBlock: le.Uint64(r[16:])}, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return termInfo{}, false
}
