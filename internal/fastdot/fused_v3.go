//go:build amd64.v3

package fastdot

// Built for GOAMD64=v3 the compiler may fuse the backend's scalar
// multiply-adds, so its sums are no longer rounded the way the kernels
// round them; the kernels then stay out of the way.
const backendMayFuse = true
