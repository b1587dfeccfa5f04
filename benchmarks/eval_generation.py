"""Evaluation decoding of SmolLM2-135M-Instruct in float32 and bf16, eager and sdpa attention.

The demo's evaluation as `tunix-rt eval` runs it: the first --prompts questions of
reasoning-mix-heldout rendered as the demo renders them (chat template, empty system turn), one
left-padded batch, greedy, --max-new-tokens, stop at end-of-turn. Each variant decodes the same
prompts --repeats times, interleaved with the others, and its fastest run counts (on a shared
machine the slow runs measure the neighbours). Prints generated tokens/s, the ratio to float32 eager,
and how many completions are identical to float32 eager's (bf16 rounds differently, so some differ).

    python benchmarks/eval_generation.py                 # the measured configuration
    python benchmarks/eval_generation.py --prompts 2 --max-new-tokens 4 --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

import torch

from tunix_rt.config import load_config, resolve_config_path
from tunix_rt.data.evalsets import load_eval_set
from tunix_rt.eval.generate import generate
from tunix_rt.eval.runner import render_for_eval
from tunix_rt.train.before_after import render_settings
from tunix_rt.train.model import load_pretrained

VARIANTS = ("float32,eager", "float32,sdpa", "bfloat16,eager", "bfloat16,sdpa")


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=72)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", default=",".join(v.replace(",", "/") for v in VARIANTS))
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    variants = [v.replace("/", ",") for v in args.variants.split(",")]

    config, _ = load_config(resolve_config_path("demo-smollm2"))
    items = load_eval_set("reasoning-mix-heldout").items[: args.prompts]
    models = {}
    for variant in variants:
        dtype, attention = variant.split(",")
        tokenizer, model = load_pretrained(config.model, attention)
        models[variant] = model.to(getattr(torch, dtype)).eval()
    settings = render_settings(tokenizer, config.system_instruction)
    prompts = [render_for_eval(item.prompt, tokenizer, settings) for item in items]

    best: dict[str, float] = {}
    texts: dict[str, list[str]] = {}
    tokens: dict[str, int] = {}
    for _ in range(args.repeats):
        for variant in variants:
            started = time.perf_counter()
            gens = generate(models[variant], tokenizer, prompts, max_new_tokens=args.max_new_tokens,
                            batch_size=len(prompts), device="cpu")  # fmt: skip
            elapsed = time.perf_counter() - started
            best[variant] = min(best.get(variant, elapsed), elapsed)
            texts[variant], tokens[variant] = [g.text for g in gens], sum(g.n_tokens for g in gens)

    baseline = variants[0]
    print(f"CPU: {cpu_name()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{len(prompts)} prompts x up to {args.max_new_tokens} new tokens, fastest of {args.repeats}")
    print(f"{'variant':<16} {'tokens':>7} {'seconds':>8} {'tok/s':>7} {'ratio':>6}  same text as {baseline}")
    rows = []
    for variant in variants:
        rate = tokens[variant] / best[variant]
        same = sum(a == b for a, b in zip(texts[variant], texts[baseline], strict=True))
        row = {"variant": variant, "tokens": tokens[variant], "seconds": round(best[variant], 2),
               "tokens_per_sec": round(rate, 1), "same_text": same, "prompts": len(prompts)}  # fmt: skip
        rows.append(row)
        ratio = rate / (tokens[baseline] / best[baseline])
        print(
            f"{variant:<16} {tokens[variant]:>7} {best[variant]:>8.1f} {rate:>7.1f} {ratio:>5.2f}x  {same}/{len(prompts)}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"cpu": cpu_name(), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
