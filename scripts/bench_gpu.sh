#!/usr/bin/env bash
# The model benchmark on an NVIDIA GPU: ssp (GoMLX + XLA) against PyTorch +
# transformers, same shapes, bf16, random-init weights, one machine.
#
# On a machine without a GPU (with Go and a C toolchain) it builds the binary:
#   scripts/bench_gpu.sh                 # -> .gpu/ssp, then prints how to run it on the GPU machine
# On the GPU machine (nvidia-smi present, no Go needed), from the repository root:
#   scripts/bench_gpu.sh                 # runs every shape and mode, rewrites the table in docs/benchmarks-model.md
#
# Knobs (environment): SHAPES ("smollm2-135m qwen2.5-0.5b"), MODES ("generate train"), WARMUP (1), ITERS (2),
# PEAK_TFLOPS and BANDWIDTH_GBS (picked from the GPU's name), PEER=0 to skip PyTorch, STEP_TIMEOUT (300 s per run),
# PYTHON (python3: the environment with jax-cuda13-pjrt), PEER_PYTHON ($PYTHON: one with torch and transformers),
# SSP_BIN (.gpu/ssp),
# BENCH_ARGS (extra flags for both sides, e.g. "--batch 32"), BACKEND (xla:cuda), DOC (docs/benchmarks-model.md).
# Results: .assets/gpu-results/*.json (RESULTS); when $OUT is set they are also copied there with the updated doc.
# The table is made from every result in that folder, so shapes may be measured in separate calls.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L > /dev/null 2>&1; then
  # Build side: the GPU machine has no Go. cgo is required by the XLA backend.
  mkdir -p .gpu
  CGO_ENABLED=1 go build -trimpath -ldflags '-s -w' -o .gpu/ssp ./cmd/ssp
  git describe --always --dirty > .gpu/ssp.version 2> /dev/null || echo unknown > .gpu/ssp.version
  size=$(stat -c %s .gpu/ssp)
  echo "built .gpu/ssp ($((size / 1024 / 1024)) MiB)" >&2
  if [ "$size" -gt $((60 * 1024 * 1024)) ]; then
    echo "warning: .gpu/ssp is over 60 MiB; the GPU machine takes at most 64 MiB per call" >&2
  fi
  .gpu/ssp model bench --shape tiny --mode generate --batch 2 --prompt-len 8 --new-tokens 4 --iters 1 \
    --dtype float32 --backend go --json > /dev/null
  cat >&2 << 'EOF'
smoke test on the CPU passed. On the GPU machine, with .gpu/ carried along, from the repository root:
  scripts/bench_gpu.sh
or, where one command may run 10 minutes at most, one shape per call (the second table holds both):
  SHAPES=smollm2-135m scripts/bench_gpu.sh
  SHAPES=qwen2.5-0.5b scripts/bench_gpu.sh
Then copy the returned benchmarks-model.md over docs/benchmarks-model.md.
EOF
  exit 0
fi

SSP=${SSP_BIN:-.gpu/ssp}
PY=${PYTHON:-python3}
SHAPES=${SHAPES:-smollm2-135m qwen2.5-0.5b}
MODES=${MODES:-generate train}
WARMUP=${WARMUP:-1}
ITERS=${ITERS:-2}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
# Results live outside .gpu/ so that a second call with .gpu/ carried again keeps the first call's results.
R=${RESULTS:-.assets/gpu-results}
mkdir -p "$R"
[ -x "$SSP" ] || { echo "no $SSP: run scripts/bench_gpu.sh on a machine with Go first and bring .gpu/ along" >&2; exit 1; }

# The XLA CUDA plugin of the JAX installation (../shared/GPU.md).
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh

GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
# Dense bf16 peak and HBM bandwidth from the data sheets; override with PEAK_TFLOPS / BANDWIDTH_GBS.
case "$GPU" in
  *H200*) peak=989 bw=4800 ;;
  *H100*PCIe*) peak=756 bw=2000 ;;
  *H100*NVL*) peak=835 bw=3900 ;;
  *H100*) peak=989 bw=3350 ;;
  *A100*) peak=312 bw=2039 ;;
  *) peak=989 bw=3350 ;;
esac
PEAK_TFLOPS=${PEAK_TFLOPS:-$peak}
BANDWIDTH_GBS=${BANDWIDTH_GBS:-$bw}
echo "== $GPU (driver $DRIVER): peak $PEAK_TFLOPS TFLOP/s, $BANDWIDTH_GBS GB/s" >&2
{
  echo "gpu=$GPU"
  echo "driver=$DRIVER"
  echo "peak_tflops=$PEAK_TFLOPS"
  echo "bandwidth_gbs=$BANDWIDTH_GBS"
  echo "backend=$GOMLX_BACKEND"
  echo "date=$(date -u +%Y-%m-%d)"
  echo "ssp=$(cat "$SSP.version" 2> /dev/null || echo unknown)"
} > "$R/machine.txt"

PEER=${PEER:-1}
PEER_PY=${PEER_PYTHON:-$PY}
if [ "$PEER" = 1 ] && ! $PEER_PY -c "import torch, transformers" 2> /dev/null; then
  echo "warning: torch or transformers missing in $PEER_PY: PyTorch columns stay empty" >&2
  PEER=0
fi

save() { # copy what exists so far to $OUT, so a run cut short still returns its results
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/results"
    cp "$R"/* "$OUT/results/" 2> /dev/null || true
  fi
}

for shape in $SHAPES; do
  "$SSP" model bench --shape "$shape" --print-config > "$R/config-$shape.json"
  for mode in $MODES; do
    common=(--mode "$mode" --dtype bfloat16 --warmup "$WARMUP" --iters "$ITERS"
      --peak-tflops "$PEAK_TFLOPS" --bandwidth-gbs "$BANDWIDTH_GBS")
    # shellcheck disable=SC2206 # BENCH_ARGS is a list of flags
    common+=(${BENCH_ARGS:-})
    echo "== ssp $shape $mode" >&2
    rc=0
    timeout "$STEP_TIMEOUT" "$SSP" model bench --shape "$shape" "${common[@]}" --json \
      > "$R/ssp-$shape-$mode.json" 2> "$R/ssp-$shape-$mode.err" || rc=$?
    if [ "$rc" != 0 ]; then
      echo "ssp $shape $mode failed (exit $rc): see $R/ssp-$shape-$mode.err" >&2
      if [ "$mode" = train ] && [ "$rc" != 124 ]; then # most likely out of device memory: again in micro-batches of 4
        echo "== ssp $shape $mode --micro-batch 4" >&2
        timeout "$STEP_TIMEOUT" "$SSP" model bench --shape "$shape" "${common[@]}" --micro-batch 4 --json \
          > "$R/ssp-$shape-$mode.json" 2>> "$R/ssp-$shape-$mode.err" || echo "failed again" >&2
      fi
    fi
    tail -c 400 "$R/ssp-$shape-$mode.json" >&2 || true
    save
    if [ "$PEER" = 1 ]; then
      echo "== pytorch $shape $mode" >&2
      timeout "$STEP_TIMEOUT" $PEER_PY scripts/bench_model_peer.py --config "$R/config-$shape.json" --shape "$shape" \
        "${common[@]}" > "$R/pytorch-$shape-$mode.json" 2> "$R/pytorch-$shape-$mode.err" ||
        echo "pytorch $shape $mode failed: see $R/pytorch-$shape-$mode.err" >&2
      tail -c 400 "$R/pytorch-$shape-$mode.json" >&2 || true
      save
    fi
  done
done

# The table between the markers of docs/benchmarks-model.md.
DOC=${DOC:-docs/benchmarks-model.md}
$PY - "$R" "$DOC" << 'EOF'
import json, os, sys

results, doc = sys.argv[1], sys.argv[2]
machine = dict(l.split("=", 1) for l in open(os.path.join(results, "machine.txt")).read().splitlines() if "=" in l)

def load(impl, shape, mode):
    try:
        with open(os.path.join(results, f"{impl}-{shape}-{mode}.json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None

def num(r, key, fmt="{:,.0f}"):
    return fmt.format(r[key]) if r and r.get(key) is not None else "—"

shapes = [n[len("config-"):-len(".json")] for n in sorted(os.listdir(results)) if n.startswith("config-")]
workload = {"generate": "generate, {batch}×({prompt_len} prompt + {new_tokens} sampled)",
            "train": "train fwd+bwd+AdamW, {batch}×{seq_len}"}

def setup(r):
    if not r or not (r.get("micro_batch") or r.get("activation_checkpointing")):
        return ""
    parts = [f"micro-batch {r['micro_batch']}"] if r.get("micro_batch") else []
    parts += ["checkpointing"] if r.get("activation_checkpointing") else []
    return f" ({', '.join(parts)})"
rows = []
for shape in shapes:
    for mode in ("generate", "train"):
        s, p = load("ssp", shape, mode), load("pytorch", shape, mode)
        if not s and not p:
            continue
        any_r = s or p
        ratio = f"{s['tokens_per_s'] / p['tokens_per_s']:.2f}×" if s and p else "—"
        roof = f"{any_r['roofline_tokens_per_s']:,.0f} ({any_r['roofline_bound']})"
        rows.append(f"| {shape} | {workload[mode].format(**any_r)} | **{num(s, 'tokens_per_s')}**{setup(s)} | {num(p, 'tokens_per_s')}{setup(p)} "
                    f"| {ratio} | {num(s, 'mfu', '{:.3f}')} | {num(p, 'mfu', '{:.3f}')} | {roof} "
                    f"| {num(s, 'roofline_fraction', '{:.1%}')} | {num(p, 'roofline_fraction', '{:.1%}')} "
                    f"| {num(s, 'warmup_s', '{:.1f} s')} | {num(p, 'peak_device_mib', '{:,.0f}')} |")
peer = next((r for r in (load("pytorch", sh, m) for sh in shapes for m in ("generate", "train")) if r), None)
table = "\n".join([
    f"Measured {machine.get('date', '')} on one **{machine.get('gpu', '?')}** (driver {machine.get('driver', '?')}), "
    f"ssp at {machine.get('ssp', '?')} with `GOMLX_BACKEND={machine.get('backend', '?')}`"
    + (f", peer {peer['backend']}" if peer else ", no PyTorch peer") + "; bf16, random-init weights. "
    f"MFU against {machine.get('peak_tflops')} TFLOP/s; roofline with {machine.get('bandwidth_gbs')} GB/s.",
    "",
    "| shape | workload | ssp tokens/s | PyTorch tokens/s | ssp / PyTorch | ssp MFU | PyTorch MFU "
    "| roofline tokens/s | ssp of roofline | PyTorch of roofline | ssp warm-up (compile) | PyTorch peak MiB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    *rows,
])
text = open(doc).read()
begin, end = "<!-- gpu:begin -->", "<!-- gpu:end -->"
if begin not in text or end not in text:
    sys.exit(f"{doc}: markers {begin} / {end} not found")
head, rest = text.split(begin, 1)
tail = rest.split(end, 1)[1]
open(doc, "w").write(f"{head}{begin}\n{table}\n{end}{tail}")
print(table)
EOF
if [ -n "${OUT:-}" ]; then
  save
  cp "$DOC" "$OUT/benchmarks-model.md"
fi
echo "wrote $DOC" >&2
