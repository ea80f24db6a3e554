#!/usr/bin/env python3
"""PyTorch + transformers peer of `ssp model bench`.

Runs the same two workloads on a random-init model built from the same
config.json (`ssp model bench --shape NAME --print-config > config.json`) and
prints one JSON object with the fields ssp prints:

  generate: model.generate on `batch` random prompts of `prompt_len` tokens,
            sampling (temperature 1, top-p 1, no top-k) with
            min_new_tokens = max_new_tokens = new_tokens, so every row makes
            exactly new_tokens tokens;
  train:    forward + backward (labels = input_ids) + gradient clipping to 1 +
            torch.optim.AdamW on `batch` random sequences of `seq_len` tokens.

With --dtype bfloat16, generation keeps bf16 weights; training keeps float32
master weights and runs forward/backward under torch.autocast(bfloat16), as
ssp does (--train-weights bfloat16 stores the weights themselves in bf16).

  python3 scripts/bench_model_peer.py --config cfg.json --shape smollm2-135m --mode generate
"""

import argparse
import json
import resource
import sys
import time
import warnings


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="Hugging Face config.json of the architecture")
    p.add_argument("--shape", default="", help="name reported in the output (default: the config path)")
    p.add_argument("--mode", choices=["generate", "train"], default="generate")
    p.add_argument("--batch", type=int, default=0, help="default 64 for generate, 16 for train")
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16")
    p.add_argument("--train-weights", choices=["float32", "bfloat16"], default="float32",
                   help="train: dtype the weights are stored in (float32: autocast mixed precision)")
    p.add_argument("--micro-batch", type=int, default=0, help="train: gradient accumulation over micro-batches")
    p.add_argument("--activation-checkpointing", action="store_true", help="train: gradient checkpointing")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--peak-tflops", type=float, default=989.0)
    p.add_argument("--bandwidth-gbs", type=float, default=3350.0)
    p.add_argument("--device", default="", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="accepted as ssp model bench takes it; the output is always JSON")
    args = p.parse_args()
    if args.batch == 0:
        args.batch = 64 if args.mode == "generate" else 16
    for name in ("batch", "prompt_len", "new_tokens", "seq_len", "iters"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        warnings.warn("no CUDA device: running the PyTorch peer on the CPU, figures are not comparable to a GPU's")
    torch.manual_seed(args.seed)
    with open(args.config) as f:
        cfg_dict = json.load(f)
    cfg_dict.pop("architectures", None)
    model_type = cfg_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg_dict)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    weights = dtype if args.mode == "generate" else (
        torch.bfloat16 if args.train_weights == "bfloat16" else torch.float32)
    with torch.device(device):  # initialise on the device: much faster than on the host for 0.5B parameters
        model = AutoModelForCausalLM.from_config(config)
    model = model.to(dtype=weights)
    n_params = sum(p.numel() for p in model.parameters())  # a tied embedding counts once
    vocab = config.vocab_size

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    res = {
        "impl": "pytorch", "shape": args.shape or args.config, "model_type": model_type, "mode": args.mode,
        "backend": f"torch {torch.__version__} transformers {transformers.__version__} {device}"
                   + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""),
        "dtype": args.dtype, "params": n_params, "batch": args.batch,
        "warmup": args.warmup, "iters": args.iters,
        "peak_tflops": args.peak_tflops, "bandwidth_gbs": args.bandwidth_gbs,
    }
    gen = torch.Generator(device="cpu").manual_seed(args.seed)

    if args.mode == "generate":
        model.eval()
        res.update(prompt_len=args.prompt_len, new_tokens=args.new_tokens)
        ids = torch.randint(0, vocab, (args.batch, args.prompt_len), generator=gen).to(device)
        mask = torch.ones_like(ids)
        pad = config.eos_token_id if isinstance(config.eos_token_id, int) else 0

        def iterate():
            with torch.inference_mode():
                out = model.generate(ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                     min_new_tokens=args.new_tokens, max_new_tokens=args.new_tokens,
                                     pad_token_id=pad)
            made = out.shape[1] - args.prompt_len
            if made != args.new_tokens:
                raise SystemExit(f"generate made {made} tokens, want {args.new_tokens}")
    else:
        model.train()
        res.update(seq_len=args.seq_len, micro_batch=args.micro_batch,
                   activation_checkpointing=args.activation_checkpointing, weights_dtype=args.train_weights)
        if args.activation_checkpointing:
            model.gradient_checkpointing_enable()
        ids = torch.randint(0, vocab, (args.batch, args.seq_len), generator=gen).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
        micro = args.micro_batch or args.batch
        autocast = dtype == torch.bfloat16 and args.train_weights == "float32"

        def iterate():
            total = 0.0
            for lo in range(0, args.batch, micro):
                chunk = ids[lo:lo + micro]
                with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
                    loss = model(input_ids=chunk, labels=chunk).loss * (chunk.shape[0] / args.batch)
                loss.backward()
                total += loss.item()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            res["loss"] = total

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.warmup):
        iterate()
    sync()
    res["warmup_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.iters):
        iterate()
    sync()
    res["s_per_iter"] = (time.perf_counter() - start) / args.iters
    res["peak_host_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        res["peak_device_mib"] = torch.cuda.max_memory_allocated() / 2**20
    roofline(res, config)
    json.dump(res, sys.stdout)
    print()


def roofline(r, config):
    """The formulas of ssp model bench (cmd/ssp/model_bench.go)."""
    n = float(r["params"])
    layers = config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    attn_width = config.num_attention_heads * head_dim
    kv_width = config.num_key_value_heads * head_dim
    bytes_per = 2 if r["dtype"] == "bfloat16" else 4
    peak = r["peak_tflops"] * 1e12
    bandwidth = r["bandwidth_gbs"] * 1e9
    if r["mode"] == "generate":
        r["tokens_per_s"] = r["batch"] * r["new_tokens"] / r["s_per_iter"]
        ctx = r["prompt_len"] + r["new_tokens"] / 2
        r["flops_per_token"] = 2 * n + 4 * layers * attn_width * ctx
        r["flops_per_token_with_attention"] = r["flops_per_token"]
        r["weight_bytes"] = n * bytes_per
        r["kv_bytes_per_step"] = r["batch"] * 2 * layers * kv_width * ctx * bytes_per
        memory_bound = r["batch"] * bandwidth / (r["weight_bytes"] + r["kv_bytes_per_step"])
        compute_bound = peak / r["flops_per_token"]
        if compute_bound < memory_bound:
            r["roofline_tokens_per_s"], r["roofline_bound"] = compute_bound, "compute"
        else:
            r["roofline_tokens_per_s"], r["roofline_bound"] = memory_bound, "memory"
    else:
        r["tokens_per_s"] = r["batch"] * r["seq_len"] / r["s_per_iter"]
        r["flops_per_token"] = 6 * n
        r["flops_per_token_with_attention"] = 6 * n + 12 * layers * attn_width * r["seq_len"]
        r["weight_bytes"] = n * (2 if r.get("weights_dtype") == "bfloat16" else 4)
        r["roofline_tokens_per_s"], r["roofline_bound"] = peak / r["flops_per_token_with_attention"], "compute"
    r["mfu"] = r["flops_per_token"] * r["tokens_per_s"] / peak
    r["mfu_with_attention"] = r["flops_per_token_with_attention"] * r["tokens_per_s"] / peak
    r["roofline_fraction"] = r["tokens_per_s"] / r["roofline_tokens_per_s"]


if __name__ == "__main__":
    main()
