package model

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// maxPrograms bounds the compiled programs (one per input shape) an
// executor keeps. GoMLX refuses new shapes beyond its cache size, so when a
// new shape would exceed it the executor is dropped and rebuilt empty:
// long runs with varied shapes recompile occasionally instead of failing.
const maxPrograms = 64

// programs is a graph function with its compiled programs.
type programs struct {
	backend backends.Backend
	ctx     *mlctx.Context
	fn      any // a graph function accepted by context.NewExec
	exec    *mlctx.Exec
	shapes  map[string]bool
}

func newPrograms(backend backends.Backend, ctx *mlctx.Context, fn any) *programs {
	return &programs{backend: backend, ctx: ctx, fn: fn}
}

// run executes the program for the shapes described by key.
func (p *programs) run(key string, args ...any) ([]*tensors.Tensor, error) {
	if p.exec != nil && !p.shapes[key] && len(p.shapes) >= maxPrograms {
		p.exec.Finalize()
		p.exec = nil
	}
	if p.exec == nil {
		exec, err := mlctx.NewExecAny(p.backend, p.ctx, p.fn)
		if err != nil {
			return nil, err
		}
		exec.SetMaxCache(maxPrograms)
		p.exec, p.shapes = exec, map[string]bool{}
	}
	p.shapes[key] = true
	return catch(func() ([]*tensors.Tensor, error) { return p.exec.Exec(args...) })
}

// close releases the compiled programs.
func (p *programs) close() {
	if p != nil && p.exec != nil {
		p.exec.Finalize()
		p.exec = nil
	}
}

func shapeKey(dims ...int) string { return fmt.Sprint(dims) }
