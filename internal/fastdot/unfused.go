//go:build !amd64.v3

package fastdot

const backendMayFuse = false
