//go:build !amd64

package vector

// useAVX2 and useGo exist so that tests build everywhere; only amd64 has
// assembly kernels.
var asmAvailable = false

func useAVX2() {}
func useGo()   {}
