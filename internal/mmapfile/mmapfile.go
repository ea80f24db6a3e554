// Package mmapfile maps the read-only files of ssp's indexes (BM25 and
// vectors) into memory after checking them against their recorded sizes.
package mmapfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Map maps path read-only after checking it has the recorded size want; a
// size mismatch is reported wrapping corrupt, the caller's "index damaged"
// error. An empty file maps to nil.
func Map(path string, want int64, corrupt error) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != want {
		return nil, fmt.Errorf("%s: %w: size %d bytes, index header records %d (truncated or replaced?)", filepath.Base(path), corrupt, st.Size(), want)
	}
	if want == 0 {
		return nil, nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(want), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", filepath.Base(path), err)
	}
	return data, nil
}
