#!/usr/bin/env python3
"""Writes internal/safetensors/testdata/golden.safetensors with the reference
`safetensors` package: one small tensor per dtype, a scalar, an empty tensor
and string metadata. The Go tests read it and check that writing the same
tensors reproduces the file byte for byte.

Usage: .assets/venv/bin/python scripts/gen_safetensors_golden.py   (venv from scripts/fetch_smollm2.sh)
"""
import os

import numpy as np
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "internal", "safetensors", "testdata", "golden.safetensors")
f = np.array([[0.0, -0.0, 1.5, -2.25], [1e-8, 65504.0, np.inf, -np.inf]], dtype=np.float32)
tensors = {
    "f32": f,
    "f16": f.astype(np.float16),
    "f64": f.astype(np.float64),
    "i64": np.array([0, -1, 2**40, -(2**62)], dtype=np.int64),
    "i32": np.array([[1, -2], [3, -2**31]], dtype=np.int32),
    "i16": np.array([-32768, 32767, 5], dtype=np.int16),
    "i8": np.array([-128, 127, 0], dtype=np.int8),
    "u8": np.array([0, 200, 255], dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "scalar": np.array(3.5, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "a.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
}
save_file(tensors, OUT + ".tmp", metadata={"format": "pt", "note": "golden"})
os.replace(OUT + ".tmp", OUT)
print("wrote", OUT, os.path.getsize(OUT), "bytes")
