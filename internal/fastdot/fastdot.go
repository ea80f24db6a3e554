// Package fastdot gives GoMLX's pure-Go backend (simplego) a vectorised
// float32 matrix-product kernel that computes bitwise the same results as
// the backend's own scalar loops, several times faster.
//
// Why it exists: on a CPU the backend's DotGeneral is most of a training
// step (docs/benchmarks-model.md), and its inner loops are scalar Go. GoMLX
// v0.26 has no public way to plug in a kernel, but it picks its kernels from
// tables, one entry per dtype, at run time: the kernel of its blocked path
// (large products), the packing of operands into its blocks, and the loop of
// its direct path (small products). This package replaces the float32
// entries of the three when it is imported, on amd64 CPUs with AVX. Every
// product and every sum is rounded in the order of the backend's loops
// (groups of eight products summed left to right, then added to the
// output; no fused multiply-add, as the Go compiler builds the backend's
// loops for amd64 by default), so logits, losses and
// generated tokens are unchanged, only faster. Set SSP_FASTDOT=0 to keep the
// backend's loops (for side-by-side benchmarks); a build for GOAMD64=v3,
// where the compiler may fuse the backend's multiply-adds, keeps them too.
//
// The tables and the fields read here are internal to GoMLX v0.26.0, the
// version go.mod pins: the package reaches them by linkname and reflection,
// checks what it finds when it is imported, and leaves the backend alone
// (Installed() false) if anything is not as expected. TestBitwise compares
// both paths with the backend's own loops.
package fastdot

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sync"
	"unsafe"

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

//go:linkname blockedKernels github.com/gomlx/gomlx/backends/simplego.dotGeneralKernelDTypeMap
var blockedKernels *simplego.DTypeMap

//go:linkname directLoops github.com/gomlx/gomlx/backends/simplego.dotGeneralNormalizedDTypeMap
var directLoops *simplego.DTypeMap

//go:linkname blockCopies github.com/gomlx/gomlx/backends/simplego.dotGeneralFlatToBlockDTypeMap
var blockCopies *simplego.DTypeMap

var (
	mu                      sync.Mutex
	installed               bool
	origBlocked, origDirect any
	fastBlocked, fastDirect any
	origCopy, fastCopy      any
	installErr              error
	flatOffset, shapeOffset uintptr // simplego.Buffer.flat, .shape
	offM, offN, offK        uintptr // simplego.dotGeneralNodeData sizes
)

func init() {
	installErr = prepare()
	if installErr == nil && os.Getenv("SSP_FASTDOT") != "0" {
		SetEnabled(true)
	}
}

// Installed reports whether the backend's float32 products currently run
// on this package's kernel.
func Installed() bool {
	mu.Lock()
	defer mu.Unlock()
	return installed
}

// Unavailable says why the kernel cannot be installed ("" when it can).
func Unavailable() string {
	if installErr != nil {
		return installErr.Error()
	}
	return ""
}

// SetEnabled installs (true) or removes (false) the kernel. Programs being
// compiled or run by the backend at the same time may use either.
func SetEnabled(on bool) {
	mu.Lock()
	defer mu.Unlock()
	if installErr != nil {
		return
	}
	if on {
		blockedKernels.Map[dtypes.Float32] = fastBlocked
		directLoops.Map[dtypes.Float32] = fastDirect
		blockCopies.Map[dtypes.Float32] = fastCopy
	} else {
		blockedKernels.Map[dtypes.Float32] = origBlocked
		directLoops.Map[dtypes.Float32] = origDirect
		blockCopies.Map[dtypes.Float32] = origCopy
	}
	installed = on
}

// prepare checks that the backend is the one this package was written
// against and builds the replacement entries with the exact function types
// the backend asserts.
func prepare() error {
	if !haveKernel {
		return fmt.Errorf("fastdot: the CPU has no AVX (or this is not amd64)")
	}
	if backendMayFuse {
		return fmt.Errorf("fastdot: built with GOAMD64=v3, where the backend's loops may fuse multiply-adds")
	}
	if blockedKernels == nil || directLoops == nil || blockCopies == nil {
		return fmt.Errorf("fastdot: simplego's kernel tables not found")
	}
	origBlocked = blockedKernels.Map[dtypes.Float32]
	origDirect = directLoops.Map[dtypes.Float32]
	origCopy = blockCopies.Map[dtypes.Float32]
	if origBlocked == nil || origDirect == nil || origCopy == nil {
		return fmt.Errorf("fastdot: simplego registers no float32 product")
	}
	bufPtr := reflect.TypeOf((*simplego.Buffer)(nil))
	f, ok := bufPtr.Elem().FieldByName("flat")
	if !ok || f.Type.Kind() != reflect.Interface {
		return fmt.Errorf("fastdot: simplego.Buffer has no flat field")
	}
	flatOffset = f.Offset
	f, ok = bufPtr.Elem().FieldByName("shape")
	if !ok || f.Type != reflect.TypeOf(shapes.Shape{}) {
		return fmt.Errorf("fastdot: simplego.Buffer has no shape field")
	}
	shapeOffset = f.Offset

	// Blocked path's packing: func(source, blkOutput *Buffer, contractingAxes,
	// batchAxes []int, batchSize, crossSize, contractingSize, blkLog2Dim int).
	copyFn, ok := origCopy.(func(source, blkOutput *simplego.Buffer, contractingAxes, batchAxes []int, batchSize, crossSize, contractingSize, blkLog2Dim int))
	if !ok {
		return fmt.Errorf("fastdot: simplego's block packing has type %T", origCopy)
	}
	fastCopy = func(source, blkOutput *simplego.Buffer, contractingAxes, batchAxes []int, batchSize, crossSize, contractingSize, blkLog2Dim int) {
		rank := (*shapes.Shape)(unsafe.Add(unsafe.Pointer(source), shapeOffset)).Rank()
		layout := packLayout(rank, contractingAxes, batchAxes)
		if layout == otherLayout {
			copyFn(source, blkOutput, contractingAxes, batchAxes, batchSize, crossSize, contractingSize, blkLog2Dim)
			return
		}
		src := (*(*any)(unsafe.Add(unsafe.Pointer(source), flatOffset))).([]float32)
		dst := (*(*any)(unsafe.Add(unsafe.Pointer(blkOutput), flatOffset))).([]float32)
		packBlocks(dst, src, layout, batchSize, crossSize, contractingSize, blkLog2Dim)
	}

	// Blocked path: func(lhs, rhs, output *Buffer, blockDim int) kernelFuncType,
	// kernelFuncType = func(lhsBlockIdx, rhsBlockIdx, outputBlockIdx int).
	bt := reflect.TypeOf(origBlocked)
	kernelType := bt.Out(0)
	if bt.Kind() != reflect.Func || bt.NumIn() != 4 || bt.In(0) != bufPtr || bt.In(1) != bufPtr || bt.In(2) != bufPtr ||
		bt.In(3).Kind() != reflect.Int || bt.NumOut() != 1 || !reflect.TypeOf(blockKernel(nil)).ConvertibleTo(kernelType) {
		return fmt.Errorf("fastdot: simplego's blocked kernel has type %s", bt)
	}
	fastBlocked = reflect.MakeFunc(bt, func(args []reflect.Value) []reflect.Value {
		lhs, rhs, out := bufferFloats(args[0]), bufferFloats(args[1]), bufferFloats(args[2])
		blockDim := int(args[3].Int())
		if blockDim%32 != 0 {
			return reflect.ValueOf(origBlocked).Call(args)
		}
		return []reflect.Value{reflect.ValueOf(newBlockKernel(lhs, rhs, out, blockDim)).Convert(kernelType)}
	}).Interface()

	// Direct path: func(lhs, rhs, output *Buffer, params *dotGeneralNodeData, batchStartIdx, batchEndIdx int).
	dt := reflect.TypeOf(origDirect)
	if dt.Kind() != reflect.Func || dt.NumIn() != 6 || dt.In(0) != bufPtr || dt.In(1) != bufPtr || dt.In(2) != bufPtr ||
		dt.In(3).Kind() != reflect.Pointer || dt.In(3).Elem().Kind() != reflect.Struct ||
		dt.In(4).Kind() != reflect.Int || dt.In(5).Kind() != reflect.Int || dt.NumOut() != 0 {
		return fmt.Errorf("fastdot: simplego's direct loop has type %s", dt)
	}
	params := dt.In(3).Elem()
	for _, x := range []struct {
		name string
		off  *uintptr
	}{{"lhsCrossSize", &offM}, {"rhsCrossSize", &offN}, {"contractingSize", &offK}} {
		f, ok := params.FieldByName(x.name)
		if !ok || f.Type.Kind() != reflect.Int {
			return fmt.Errorf("fastdot: simplego's product parameters have no int %s", x.name)
		}
		*x.off = f.Offset
	}
	fastDirect = reflect.MakeFunc(dt, func(args []reflect.Value) []reflect.Value {
		p := args[3].UnsafePointer()
		size := func(off uintptr) int { return *(*int)(unsafe.Add(p, off)) }
		m, n, k := size(offM), size(offN), size(offK)
		start, end := int(args[4].Int()), int(args[5].Int())
		if !directWorthIt(m, n) {
			reflect.ValueOf(origDirect).Call(args)
			return nil
		}
		directProduct(bufferFloats(args[0]), bufferFloats(args[1]), bufferFloats(args[2]), m, n, k, start, end)
		return nil
	}).Interface()
	return nil
}

// bufferFloats returns a simplego.Buffer's float32 values.
func bufferFloats(v reflect.Value) []float32 {
	return (*(*any)(unsafe.Add(v.UnsafePointer(), flatOffset))).([]float32)
}

type blockKernel func(lhsBlockIdx, rhsBlockIdx, outputBlockIdx int)

// newBlockKernel is the blocked path's kernel: out block += lhs block ·
// rhs blockᵀ, square blocks of blockDim, contraction along rows. The rhs
// blocks are transposed once here, in place (the packed copy is the
// backend's scratch, used only by this product, and each block is used by
// every lhs block of its row), so the kernel reads a row of outputs at a
// time.
func newBlockKernel(lhs, rhs, out []float32, blockDim int) blockKernel {
	size := blockDim * blockDim
	rt := rhs
	for b := 0; b+size <= len(rhs); b += size {
		transposeSquare(rt[b:b+size], blockDim)
	}
	return func(lhsIdx, rhsIdx, outIdx int) {
		l := lhs[lhsIdx*size : (lhsIdx+1)*size]
		r := rt[rhsIdx*size : (rhsIdx+1)*size]
		o := out[outIdx*size : (outIdx+1)*size]
		groups32(&l[0], blockDim, &r[0], blockDim, &o[0], blockDim, blockDim, blockDim/8, blockDim/32)
	}
}

// transpose writes src ([rows, cols]) transposed into dst ([cols, rows]).
func transpose(dst, src []float32, rows, cols int) {
	_ = dst[rows*cols-1]
	_ = src[rows*cols-1]
	const tile = 16
	for r0 := 0; r0 < rows; r0 += tile {
		for c0 := 0; c0 < cols; c0 += tile {
			for r := r0; r < min(r0+tile, rows); r++ {
				row := src[r*cols : (r+1)*cols]
				for c := c0; c < min(c0+tile, cols); c++ {
					dst[c*rows+r] = row[c]
				}
			}
		}
	}
}

// transposeSquare transposes a [n, n] matrix in place.
func transposeSquare(a []float32, n int) {
	_ = a[n*n-1]
	for i := 1; i < n; i++ {
		for j := 0; j < i; j++ {
			a[i*n+j], a[j*n+i] = a[j*n+i], a[i*n+j]
		}
	}
}

// Layouts of a product's operand that packBlocks copies directly.
const (
	otherLayout  = iota
	crossThenSum // [batch..., cross..., contracting...]: rows of the packed operand are contiguous
	sumThenCross // [batch..., contracting..., cross...]: the operand is packed transposed
)

// packLayout tells whether an operand of the given rank with these axes is
// laid out as [batch, cross, contracting] or [batch, contracting, cross]
// (each group's axes in the order the product lists them).
func packLayout(rank int, contractingAxes, batchAxes []int) int {
	nb, nc := len(batchAxes), len(contractingAxes)
	for i, a := range batchAxes {
		if a != i {
			return otherLayout
		}
	}
	last, first := true, true
	for i, a := range contractingAxes {
		last = last && a == rank-nc+i
		first = first && a == nb+i
	}
	switch {
	case last:
		return crossThenSum
	case first:
		return sumThenCross
	}
	return otherLayout
}

// packBlocks writes src, [batch, cross, contracting] or [batch,
// contracting, cross], into dst in the backend's blocked layout [batch,
// crossBlocks, contractBlocks, blk, blk], leaving the padding (zeroed by
// the caller) alone: the same values the backend's packing writes.
func packBlocks(dst, src []float32, layout, batch, cross, contract, log2Blk int) {
	blk := 1 << log2Blk
	crossBlocks := (cross + blk - 1) / blk
	contractBlocks := (contract + blk - 1) / blk
	blockSize := blk * blk
	rowBlocks := contractBlocks * blockSize // one row of blocks
	for b := range batch {
		s := src[b*cross*contract : (b+1)*cross*contract]
		d := dst[b*crossBlocks*rowBlocks : (b+1)*crossBlocks*rowBlocks]
		if layout == crossThenSum {
			for c := range cross {
				row := s[c*contract : (c+1)*contract]
				base := (c>>log2Blk)*rowBlocks + (c&(blk-1))*blk
				for kb := range contractBlocks {
					k0 := kb * blk
					copy(d[base+kb*blockSize:base+kb*blockSize+min(blk, contract-k0)], row[k0:])
				}
			}
			continue
		}
		for k := range contract {
			row := s[k*cross : (k+1)*cross]
			base := (k>>log2Blk)*blockSize + (k & (blk - 1))
			for c, v := range row {
				d[base+(c>>log2Blk)*rowBlocks+(c&(blk-1))*blk] = v
			}
		}
	}
}

// directWorthIt: the kernels work on 8 rows or 32 columns of outputs at a
// time; below four rows the backend's loop is as fast.
func directWorthIt(m, n int) bool { return m >= 4 && (m <= n || n >= 32) }

var scratch = sync.Pool{New: func() any { return new([]float32) }}

func getScratch(n int) *[]float32 {
	buf := scratch.Get().(*[]float32)
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	*buf = (*buf)[:n]
	return buf
}

// directProduct is the direct path: for each batch entry in [start, end),
// out[m, n] += lhs[m, k] · rhs[n, k]ᵀ, summed as the backend's loop does:
// contraction blocks of 64, in each groups of eight products, then the
// block's last products one at a time. The kernels need one operand
// transposed; the smaller one is (a decode step's few rows rather than the
// weight). The backend spreads the batch entries over its workers; a lone
// large entry is spread here over the cores by rows.
func directProduct(lhs, rhs, out []float32, m, n, k, start, end int) {
	byRows := m <= n // lanes over 8 rows of lhs, else over 32 columns
	parts := 1
	if end-start < runtime.GOMAXPROCS(0) && m*n*k >= 1<<20 {
		parts = max(1, min(runtime.GOMAXPROCS(0), m/8))
	}
	var rt *[]float32
	if !byRows {
		rt = getScratch(n * k)
		defer scratch.Put(rt)
	}
	for b := start; b < end; b++ {
		l := lhs[b*m*k : (b+1)*m*k]
		r := rhs[b*n*k : (b+1)*n*k]
		o := out[b*m*n : (b+1)*m*n]
		if !byRows {
			transpose(*rt, r, n, k)
		}
		rows := func(i0, i1 int) {
			if byRows {
				directByRows(l, r, o, i0, i1, n, k)
			} else {
				directByColumns(l, r, *rt, o, i0, i1, n, k)
			}
		}
		if parts == 1 {
			rows(0, m)
			continue
		}
		bound := func(p int) int { // parts start on multiples of 8 rows
			if p == parts {
				return m
			}
			return p * m / parts / 8 * 8
		}
		var wg sync.WaitGroup
		for p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rows(bound(p), bound(p+1))
			}()
		}
		wg.Wait()
	}
}

// directByColumns computes rows [i0, i1) of one batch entry, 32 output
// columns at a time from rt (the right operand transposed); the last n%32
// columns are computed here in the same order.
func directByColumns(l, r, rt, o []float32, i0, i1, n, k int) {
	if i0 >= i1 {
		return
	}
	vec := n / 32 * 32
	for k0 := 0; k0 < k; k0 += 64 {
		k1 := min(k0+64, k)
		groups := (k1 - k0) / 8
		tail := k0 + 8*groups
		if groups > 0 && vec > 0 {
			groups32(&l[i0*k+k0], k, &rt[k0*n], n, &o[i0*n], n, i1-i0, groups, vec/32)
		}
		for i := i0; i < i1; i++ {
			li := l[i*k : (i+1)*k]
			oi := o[i*n : (i+1)*n]
			for j := vec; j < n; j++ {
				oi[j] = groupSums(oi[j], li, r[j*k:(j+1)*k], k0, tail)
			}
			for x := tail; x < k1; x++ {
				lx := li[x]
				rx := rt[x*n : (x+1)*n]
				for j := range n {
					oi[j] += lx * rx[j]
				}
			}
		}
	}
}

// directByRows computes rows [i0, i1) of one batch entry eight rows at a
// time: those rows of l transposed ([k][8], rows past i1 zero), the output
// gathered transposed ([n][8]), the kernel run over every row of r, and the
// output scattered back.
func directByRows(l, r, o []float32, i0, i1, n, k int) {
	ltBuf, otBuf := getScratch(8*k), getScratch(8*n)
	defer scratch.Put(ltBuf)
	defer scratch.Put(otBuf)
	lt, ot := *ltBuf, *otBuf
	for c0 := i0; c0 < i1; c0 += 8 {
		c1 := min(c0+8, i1)
		clear(lt)
		clear(ot)
		for i := c0; i < c1; i++ {
			for x, v := range l[i*k : (i+1)*k] {
				lt[x*8+i-c0] = v
			}
			for j, v := range o[i*n : (i+1)*n] {
				ot[j*8+i-c0] = v
			}
		}
		for k0 := 0; k0 < k; k0 += 64 {
			k1 := min(k0+64, k)
			groups := (k1 - k0) / 8
			if groups > 0 {
				groupsT(&r[k0], k, &lt[k0*8], &ot[0], n, groups)
			}
			for x := k0 + 8*groups; x < k1; x++ {
				lx := lt[x*8 : x*8+8]
				for j := range n {
					rjx := r[j*k+x]
					oj := ot[j*8 : j*8+8]
					for q := range 8 {
						oj[q] += lx[q] * rjx
					}
				}
			}
		}
		for i := c0; i < c1; i++ {
			oi := o[i*n : (i+1)*n]
			for j := range oi {
				oi[j] = ot[j*8+i-c0]
			}
		}
	}
}

// groupSums adds to sum the groups of eight products li[x]·rj[x] for x in
// [k0, tail), as the backend's loop does.
func groupSums(sum float32, li, rj []float32, k0, tail int) float32 {
	for x := k0; x < tail; x += 8 {
		sum += li[x]*rj[x] + li[x+1]*rj[x+1] + li[x+2]*rj[x+2] + li[x+3]*rj[x+3] +
			li[x+4]*rj[x+4] + li[x+5]*rj[x+5] + li[x+6]*rj[x+6] + li[x+7]*rj[x+7]
	}
	return sum
}
