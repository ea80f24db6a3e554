package vector

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ssp-project/ssp/internal/mmapfile"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

const (
	graphFormat   = "ssp-vector-hnsw"
	graphFile     = "hnsw.bin"
	graphMetaFile = "hnsw.json"
)

// graphMeta is hnsw.json. hnsw.bin holds the node levels (one byte each,
// padded to a multiple of 4), then layer-0 link blocks (count + 2M int32 per
// node), then the upper-layer blocks (count + M int32 each), little-endian.
type graphMeta struct {
	Format         string   `json:"format"`
	Version        int      `json:"version"`
	Count          int64    `json:"count"`
	M              int      `json:"m"`
	M0             int      `json:"m0"`
	EfConstruction int      `json:"ef_construction"`
	Entry          int32    `json:"entry"`
	MaxLevel       int      `json:"max_level"`
	UpperBlocks    int64    `json:"upper_blocks"`
	BuildSeconds   float64  `json:"build_seconds"`
	File           fileInfo `json:"file"`
}

func (gm *graphMeta) sizes() (levels, l0, up int64) {
	levels = (gm.Count + 3) &^ 3
	l0 = 4 * gm.Count * int64(gm.M0+1)
	up = 4 * gm.UpperBlocks * int64(gm.M+1)
	return
}

func int32sAsBytes(v []int32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

func bytesAsInt32(b []byte) []int32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// save writes hnsw.bin and hnsw.json. The old hnsw.json goes first, so a
// crash part-way leaves no graph rather than a description of another one.
func (g *hnsw) save(dir string) error {
	if err := os.Remove(filepath.Join(dir, graphMetaFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	path := filepath.Join(dir, graphFile)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	h := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	pad := make([]byte, (4-len(g.levels)%4)%4)
	var n int64
	for _, part := range [][]byte{g.levels, pad, int32sAsBytes(g.links0), int32sAsBytes(g.upper)} {
		if _, err = bw.Write(part); err != nil {
			break
		}
		n += int64(len(part))
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", graphFile, err)
	}
	g.info.File = fileInfo{Size: n, CRC32C: h.Sum32()}
	data, _ := json.MarshalIndent(g.info, "", "  ")
	return writeFileAtomic(filepath.Join(dir, graphMetaFile), data)
}

// loadHNSW maps the graph when the directory has one and checks its size
// and that every link points at a node of the index.
func (ix *Index) loadHNSW() error {
	raw, err := os.ReadFile(filepath.Join(ix.dir, graphMetaFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var gm graphMeta
	if err := json.Unmarshal(raw, &gm); err != nil || gm.Format != graphFormat {
		return fmt.Errorf("%s: %w: not an HNSW header", graphMetaFile, ErrCorrupt)
	}
	if gm.Version != formatVersion {
		return fmt.Errorf("%s: format version %d, this program reads version %d", graphMetaFile, gm.Version, formatVersion)
	}
	if gm.Count != ix.meta.Count {
		return fmt.Errorf("%s: %w: graph of %d vectors, index has %d", graphMetaFile, ErrCorrupt, gm.Count, ix.meta.Count)
	}
	if gm.M <= 0 || gm.M > 255 || gm.M0 != 2*gm.M || gm.UpperBlocks < 0 || gm.MaxLevel < 0 || gm.MaxLevel > 255 ||
		(gm.Count > 0 && (gm.Entry < 0 || int64(gm.Entry) >= gm.Count)) {
		return fmt.Errorf("%s: %w: bad parameters", graphMetaFile, ErrCorrupt)
	}
	lv, l0, up := gm.sizes()
	if gm.File.Size != lv+l0+up {
		return fmt.Errorf("%s: %w: recorded size %d, counts imply %d", graphFile, ErrCorrupt, gm.File.Size, lv+l0+up)
	}
	data, err := mmapfile.Map(filepath.Join(ix.dir, graphFile), gm.File.Size, ErrCorrupt)
	if err != nil {
		return err
	}
	n := int(gm.Count)
	g := &hnsw{n: n, m: gm.M, m0: gm.M0, efc: gm.EfConstruction, entry: gm.Entry, maxLevel: gm.MaxLevel,
		mapped: data, info: gm, dir: ix.dir}
	if n == 0 {
		g.entry = -1
		ix.graph = g
		return nil
	}
	g.levels = data[:n]
	g.links0 = bytesAsInt32(data[lv : lv+l0])
	g.upper = bytesAsInt32(data[lv+l0:])
	g.upperOff = make([]int32, n)
	var blocks int64
	for i, l := range g.levels {
		if int(l) > gm.MaxLevel {
			g.close()
			return fmt.Errorf("%s: %w: node %d on level %d above the top level %d", graphFile, ErrCorrupt, i, l, gm.MaxLevel)
		}
		g.upperOff[i] = int32(blocks)
		blocks += int64(l)
	}
	if blocks != gm.UpperBlocks || int(g.levels[g.entry]) != gm.MaxLevel {
		g.close()
		return fmt.Errorf("%s: %w: levels do not match the header", graphFile, ErrCorrupt)
	}
	// Searches index with these links unchecked, so check them once here.
	for i := range n {
		for l := 0; l <= int(g.levels[i]); l++ {
			b, max := 0, g.m
			if l == 0 {
				b, max = i*(g.m0+1), g.m0
			} else {
				b = (int(g.upperOff[i]) + l - 1) * (g.m + 1)
			}
			block := g.links0
			if l > 0 {
				block = g.upper
			}
			c := int(block[b])
			if c < 0 || c > max {
				g.close()
				return fmt.Errorf("%s: %w: node %d has %d links on layer %d", graphFile, ErrCorrupt, i, c, l)
			}
			for _, e := range block[b+1 : b+1+c] {
				if e < 0 || int(e) >= n || int(g.levels[e]) < l {
					g.close()
					return fmt.Errorf("%s: %w: node %d links to %d on layer %d", graphFile, ErrCorrupt, i, e, l)
				}
			}
		}
	}
	ix.graph = g
	return nil
}

func (g *hnsw) verify() error {
	if g.mapped == nil {
		return nil // built in this process, not read back
	}
	if got := crc32.Checksum(g.mapped, castagnoli); got != g.info.File.CRC32C {
		return fmt.Errorf("%s: %w: checksum %08x, %s records %08x", graphFile, ErrCorrupt, got, graphMetaFile, g.info.File.CRC32C)
	}
	return nil
}

func (g *hnsw) close() error {
	if g.mapped == nil {
		return nil
	}
	err := syscall.Munmap(g.mapped)
	g.mapped = nil
	return err
}
