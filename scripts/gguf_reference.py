#!/usr/bin/env python3
"""Writes reference tensors for the GGUF import check.

Reads a GGUF file with the `gguf` package (llama.cpp's own reader),
dequantises every tensor with its numpy code, renames it to the Hugging Face
name, undoes llama.cpp's q/k row permutation for llama models, and saves all
of them as float32 in OUT_DIR/reference.safetensors, with OUT_DIR/meta.json
holding the metadata scalars and tokenizer sizes the Go test checks.

Usage: gguf_reference.py FILE.gguf OUT_DIR
"""
import json
import os
import re
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize

BLOCK = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def hf_name(name):
    fixed = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"blk\.(\d+)\.([a-z_]+)\.(weight|bias)", name)
    if not m or m.group(2) not in BLOCK:
        return None
    return f"model.layers.{m.group(1)}.{BLOCK[m.group(2)]}.{m.group(3)}"


def field_value(f):
    if f.types[0] == GGUFValueType.ARRAY:
        return None
    v = f.parts[f.data[0]]
    if f.types[0] == GGUFValueType.STRING:
        return bytes(v).decode("utf-8")
    return v.tolist()[0]


def write_safetensors(path, tensors):
    """Minimal safetensors writer (float32 only), so numpy is the only dependency."""
    names = sorted(tensors)
    header, off = {}, 0
    for n in names:
        a = tensors[n]
        header[n] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for n in names:
            f.write(np.ascontiguousarray(tensors[n], dtype="<f4").tobytes())
    os.replace(tmp, path)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    r = GGUFReader(src)
    meta = {k: field_value(f) for k, f in r.fields.items() if not k.startswith("tokenizer.ggml.") or f.types[0] != GGUFValueType.ARRAY}
    meta = {k: v for k, v in meta.items() if v is not None}
    arch = meta["general.architecture"]
    n_head = meta[f"{arch}.attention.head_count"]
    n_kv = meta.get(f"{arch}.attention.head_count_kv", n_head)
    tensors, types = {}, {}
    for t in r.tensors:
        name = hf_name(t.name)
        if name is None:
            continue
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        a = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        part = t.name.split(".")[2] if t.name.startswith("blk.") else ""
        if arch == "llama" and part in ("attn_q", "attn_k"):
            heads = n_head if part == "attn_q" else n_kv
            rows = a.shape[0]
            # llama.cpp stored reshape(heads, 2, hd/2, ...).swapaxes(1, 2); invert it.
            a = a.reshape(heads, rows // heads // 2, 2, *a.shape[1:]).swapaxes(1, 2).reshape(a.shape)
        tensors[name] = a
        types[name] = t.tensor_type.name
    write_safetensors(os.path.join(out, "reference.safetensors"), tensors)
    tok = r.fields
    meta["tokenizer.ggml.tokens.count"] = len(tok["tokenizer.ggml.tokens"].data)
    meta["tokenizer.ggml.merges.count"] = len(tok["tokenizer.ggml.merges"].data)
    meta["tensor_types"] = types
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    counts = {}
    for v in types.values():
        counts[v] = counts.get(v, 0) + 1
    print(f"{len(tensors)} tensors ({counts}) -> {out}")


if __name__ == "__main__":
    main()
