//go:build !amd64

package fastdot

var haveKernel = false

func groups32(l *float32, lStride int, rt *float32, rtStride int, out *float32, outStride int, rows, groups, chunks int) {
	panic("fastdot: no kernel on this architecture")
}

func groupsT(r *float32, rStride int, lt *float32, ot *float32, n, groups int) {
	panic("fastdot: no kernel on this architecture")
}
