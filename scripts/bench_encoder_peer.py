"""Passages per second of sentence-transformers on the CPU, the peer of
BenchmarkEncode in internal/encoder: all-MiniLM-L6-v2, the same 64 passages
of about 100 words, 32 per batch, two threads.

Usage: $SSP_ASSETS/peft-venv/bin/python scripts/bench_encoder_peer.py <model-dir> [repeats]
(scripts/fetch_encoders.sh makes the venv and the model directory).
"""

import sys
import time

import torch
from sentence_transformers import SentenceTransformer

WORDS = ("the of and to in is was for on that with as by at from his her which are this "
         "be or an had not but were they have one their all has been more when who will would there").split()


def passages(n):
    """The texts of benchPassages in internal/encoder/bench_test.go."""
    out = []
    for i in range(n):
        words = [WORDS[(i * 7 + j * 13 + j * j) % len(WORDS)] for j in range(100)]
        out.append(f"Passage {i}: " + " ".join(words))
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(2)
    model = SentenceTransformer(sys.argv[1], device="cpu")
    texts = passages(64)
    model.encode(texts, batch_size=32)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        model.encode(texts, batch_size=32)
    elapsed = time.perf_counter() - start
    print(f"sentence-transformers {len(texts) * repeats / elapsed:.1f} passages/s "
          f"({repeats} × {len(texts)} passages, batch 32, torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
