//go:build ((linux && amd64) || darwin) && !noxla

package model

import (
	"os"

	"github.com/gomlx/gomlx/backends/xla"
)

// go-xla downloads missing PJRT plugins from the internet by default; ssp
// does so only when XLADownloadEnv is 1.
func init() { xla.EnableAutoInstall(os.Getenv(XLADownloadEnv) == "1") }
