//go:build !linux

package outdir

import "errors"

// exchange is not available here; install falls back to two renames.
func exchange(a, b string) error { return errors.ErrUnsupported }
