#!/usr/bin/env python3
"""Renders the real Qwen3 chat_template with jinja2 (pip install jinja2) into
internal/tokenizer/testdata/chat_golden.jsonl, the reference for the Go
ChatML renderer. Run from the repository root with ../shared beside it."""
import json, jinja2
cfg = json.load(open('../shared/fixtures/tokenizers/qwen3/tokenizer_config.json'))
env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
def raise_exception(m):
    raise Exception(m)
env.globals['raise_exception'] = raise_exception
tpl = env.from_string(cfg['chat_template'])
convs = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You answer questions by searching."}, {"role": "user", "content": "Question: who wrote it?"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}],
    [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nA1"}, {"role": "user", "content": "Q2"}],
]
with open('internal/tokenizer/testdata/chat_golden.jsonl', 'w') as f:
    for c in convs:
        for gen in (True, False):
            f.write(json.dumps({"messages": c, "add_generation_prompt": gen,
                                "rendered": tpl.render(messages=c, add_generation_prompt=gen)}, ensure_ascii=False) + "\n")
