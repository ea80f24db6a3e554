#!/usr/bin/env python3
"""Writes internal/dataset/testdata/searchr1_sample.parquet, a tiny file in the
layout of Search-R1 / SSP evaluation data (question, golden_answers,
data_source, reward_model.ground_truth.target, extra_info.index).

Usage: python3 -m venv .assets/venv-parquet && .assets/venv-parquet/bin/pip install pyarrow
       .assets/venv-parquet/bin/python scripts/gen_dataset_parquet.py
"""
import os
import pyarrow as pa
import pyarrow.parquet as pq

rows = [
    {"id": "test_0", "question": "who wrote the iliad?", "golden_answers": ["Homer"],
     "data_source": "nq", "reward_model": {"style": "rule", "ground_truth": {"target": ["Homer"]}},
     "extra_info": {"split": "test", "index": 0}},
    {"id": "test_1", "question": "what is the capital of france?", "golden_answers": ["Paris", "Paris, France"],
     "data_source": "hotpotqa", "reward_model": {"style": "rule", "ground_truth": {"target": ["Paris", "Paris, France"]}},
     "extra_info": {"split": "test", "index": 1}},
    {"id": None, "question": "how many legs does a spider have?", "golden_answers": None,
     "data_source": "triviaqa", "reward_model": {"style": "rule", "ground_truth": {"target": ["8", "eight"]}},
     "extra_info": {"split": "test", "index": 2}},
]
out = os.path.join(os.path.dirname(__file__), "..", "internal", "dataset", "testdata", "searchr1_sample.parquet")
pq.write_table(pa.Table.from_pylist(rows), out)
print("wrote", os.path.normpath(out))
