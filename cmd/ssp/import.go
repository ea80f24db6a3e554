package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/ssp-project/ssp/internal/gguf"
	"github.com/ssp-project/ssp/internal/safetensors"
)

func init() {
	register(command{name: "model import", summary: "convert a GGUF file (llama, qwen2, qwen3) into a Hugging Face checkpoint directory", run: runModelImport})
}

func runModelImport(ctx context.Context, args []string) error {
	fs := newFlags("model import", "--gguf FILE --out DIR [--dtype f32|bf16|f16] [--max-shard-mb N]")
	in := fs.String("gguf", "", "GGUF file to convert")
	out := fs.String("out", "", "checkpoint directory to create, or an ssp checkpoint to replace")
	force := fs.Bool("force", false, "replace --out even when it is a directory that ssp did not write (never a file)")
	dtype := fs.String("dtype", "f32", "weight dtype of the written safetensors: f32, bf16 or f16")
	shardMB := fs.Int64("max-shard-mb", 0, "split the weights into shards of at most this many MiB (0: one file)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *in == "" {
		return fmt.Errorf("%w: --gguf is required", errUsage)
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	var dt safetensors.DType
	switch strings.ToLower(*dtype) {
	case "f32", "float32":
		dt = safetensors.F32
	case "bf16", "bfloat16":
		dt = safetensors.BF16
	case "f16", "float16":
		dt = safetensors.F16
	default:
		return fmt.Errorf("%w: --dtype %q: want f32, bf16 or f16", errUsage, *dtype)
	}
	if *shardMB < 0 {
		return fmt.Errorf("%w: --max-shard-mb must not be negative", errUsage)
	}
	if err := gguf.Import(ctx, *in, *out, gguf.ImportOptions{DType: dt, MaxShardBytes: *shardMB << 20, Force: *force}); err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", *out)
	return nil
}
