"""LoRA references from PEFT, for the Go tests of internal/model (lora_test.go).

Two modes, run with the venv that scripts/fetch_peft.sh makes:

  gen_lora_reference.py generate FIXTURES OUT
      For each tiny model in FIXTURES (the shared hf/{qwen2,qwen3,llama3}),
      wrap it in a PEFT LoRA whose B factors are random (PEFT starts them at
      zero, which would hide every mistake in B), and write OUT/<family>/:
        adapter/                    save_pretrained: adapter_config.json,
                                    adapter_model.safetensors
        reference.safetensors       input_ids [2, 24] (case1 of the fixture),
                                    logits [2, 24, V] of the adapted model,
                                    loss [1] = model(input_ids, labels=input_ids).loss,
                                    and d(loss)/d(factor) for every LoRA factor
                                    under PEFT's saved name
        merged.safetensors          merge_and_unload()'s weights, HF names

  gen_lora_reference.py check BASE ADAPTER IDS.json LOGITS.safetensors TOL
      Load ADAPTER (written by ssp) onto BASE with PeftModel.from_pretrained,
      run it over IDS.json ({"input_ids": [[...]]}) and compare its logits
      with the tensor "logits" of LOGITS.safetensors; print the largest
      absolute difference and exit 1 when it exceeds TOL.
"""

import json
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

# Targets per family, so that every projection is checked somewhere and
# subsets are too.
TARGETS = {
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "v_proj", "o_proj", "down_proj"],
    "llama3": ["k_proj", "gate_proj", "up_proj"],
}
RANK, ALPHA = 4, 8


def load_base(path):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    return model


def peft_name(name):
    # named_parameters() carries the adapter's name ("default"); the saved
    # file and ssp do not.
    return name.replace(".default.weight", ".weight")


def generate(fixtures, out):
    torch.manual_seed(0)
    for family, targets in TARGETS.items():
        src = os.path.join(fixtures, family)
        dst = os.path.join(out, family)
        os.makedirs(dst, exist_ok=True)
        ids = load_file(os.path.join(src, "reference.safetensors"))["case1_input_ids"]
        model = get_peft_model(load_base(src), LoraConfig(
            r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=targets,
            bias="none", task_type="CAUSAL_LM"))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.05)
        model.eval()
        model.save_pretrained(os.path.join(dst, "adapter"))

        out_ids = ids.to(torch.int64)
        result = model(input_ids=out_ids, labels=out_ids)
        result.loss.backward()
        tensors = {
            "input_ids": out_ids.contiguous(),
            "logits": result.logits.detach().float().contiguous(),
            "loss": result.loss.detach().reshape(1).float(),
        }
        for name, p in model.named_parameters():
            if "lora_" in name:
                tensors["grad." + peft_name(name)] = p.grad.detach().float().contiguous()
        save_file(tensors, os.path.join(dst, "reference.safetensors"))

        merged = model.merge_and_unload()
        state = {k: v.detach().float().contiguous() for k, v in merged.state_dict().items()}
        if merged.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, os.path.join(dst, "merged.safetensors"))
        print(f"{family}: targets {targets}, loss {result.loss.item():.6f}, wrote {dst}")


def check(base, adapter, ids_path, logits_path, tol):
    model = PeftModel.from_pretrained(load_base(base), adapter)
    model.eval()
    with open(ids_path) as f:
        ids = torch.tensor(json.load(f)["input_ids"], dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    ours = load_file(logits_path)["logits"]
    if ours.shape != logits.shape:
        print(f"logits shape {tuple(ours.shape)}, PEFT gives {tuple(logits.shape)}")
        return 1
    diff = (ours - logits).abs().max().item()
    # PEFT warns about nothing it ignored, so say what it loaded.
    loaded = sum(1 for n, _ in model.named_parameters() if "lora_" in n)
    print(f"max |logit difference| {diff:.3g} over {loaded} LoRA factors")
    return 0 if diff <= tol else 1


def main(argv):
    if len(argv) == 3 and argv[0] == "generate":
        generate(argv[1], argv[2])
        return 0
    if len(argv) == 6 and argv[0] == "check":
        return check(argv[1], argv[2], argv[3], argv[4], float(argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
