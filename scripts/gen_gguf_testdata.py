#!/usr/bin/env python3
"""Writes internal/gguf/testdata/quants.gguf: one small tensor per ggml type
the importer dequantises, filled with random blocks, each followed by the
float32 values that llama.cpp's own `gguf` package dequantises it to
("q.TYPE" and "ref.TYPE"), plus one tensor of an unsupported type.

Usage: .assets/venv/bin/python scripts/gen_gguf_testdata.py   (venv from scripts/fetch_smollm2.sh)
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

OUT = os.path.join(os.path.dirname(__file__), "..", "internal", "gguf", "testdata", "quants.gguf")
rng = np.random.default_rng(7)
ROWS, COLS = 2, 512

# Byte offsets of the float16 scales inside each block, which must be finite.
SCALES = {T.Q8_0: [0], T.Q4_0: [0], T.Q4_1: [0, 2], T.Q4_K: [0, 2], T.Q6_K: [208], T.Q5_K: [0, 2]}


def random_blocks(qtype):
    block, size = GGML_QUANT_SIZES[qtype]
    n = ROWS * COLS // block
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    for off in SCALES[qtype]:
        scale = (rng.standard_normal(n) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n, 2)
    return raw.reshape(ROWS, -1)


w = GGUFWriter(OUT + ".tmp", "test")
values = rng.standard_normal((ROWS, COLS)).astype(np.float32)
values[0, :4] = [0.0, -0.0, 1e-8, 65504.0]
dense = {
    T.F32: values.view(np.uint8),
    T.F16: values.astype(np.float16).view(np.uint8),
    T.BF16: (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8),
}
for qtype in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q4_K, T.Q6_K]:
    raw = dense[qtype] if qtype in dense else random_blocks(qtype)
    w.add_tensor(f"q.{qtype.name}", raw, raw_dtype=qtype)
    ref = dequantize(raw, qtype).astype(np.float32).reshape(ROWS, COLS)
    w.add_tensor(f"ref.{qtype.name}", ref)
raw = random_blocks(T.Q5_K)
w.add_tensor("unsupported.Q5_K", raw, raw_dtype=T.Q5_K)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
os.replace(OUT + ".tmp", OUT)
print("wrote", OUT, os.path.getsize(OUT), "bytes")
