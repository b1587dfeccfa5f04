"""Batched vs one-at-a-time greedy decoding throughput with `tunix_rt.eval.generate`.

A from-config Llama shaped like the embedded default (hidden 256, 4 layers; random weights, no
download) and a BPE tokenizer trained on the fly decode
the same prompts twice: in length-sorted left-padded batches and one prompt at a time. EOS is
disabled so both paths generate the same number of tokens per prompt. Each mode runs --repeats
times, interleaved, and the fastest run counts: on a shared machine the slow runs measure the
neighbours, not the code. Prints tokens/s of each and the ratio (the eval contract asks for >= 5x).

    python benchmarks/generate_throughput.py              # the measured configuration
    python benchmarks/generate_throughput.py --tiny       # seconds-long smoke run (tests)
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from tunix_rt.eval.generate import generate
from tunix_rt.train.render import render_prompt


def build_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    rng = random.Random(0)
    lines = [
        f"Question: What is {rng.randint(0, 999)} + {rng.randint(0, 999)}?\nAnswer: {i}" for i in range(500)
    ]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<eos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def build_prompts(n: int) -> list[str]:
    rng = random.Random(1)
    questions = []
    for _ in range(n):
        a, b = rng.randint(1, 9999), rng.randint(1, 9999)
        filler = " then" * rng.randint(0, 12)  # varied lengths, so batches really are padded
        questions.append(f"A shop has {a} apples{filler} and sells {b}. How many are left?")
    return [render_prompt(q) for q in questions]


def timed(fn) -> tuple[float, list]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke configuration")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--single-prompts", type=int, default=16, help="how many to decode one at a time")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each mode")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.tiny:
        args.prompts, args.single_prompts, args.batch_size = 8, 4, 8
        args.max_new_tokens, args.hidden_size, args.layers, args.repeats = 4, 32, 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)

    tokenizer = build_tokenizer(1024)
    config = AutoConfig.for_model(
        "llama", vocab_size=len(tokenizer), hidden_size=args.hidden_size, intermediate_size=args.hidden_size * 8 // 3,
        num_hidden_layers=args.layers, num_attention_heads=max(1, args.hidden_size // 64),
        max_position_embeddings=1024, eos_token_id=None, bos_token_id=None, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    model.generation_config.eos_token_id = None
    prompts = build_prompts(args.prompts)
    kwargs = dict(max_new_tokens=args.max_new_tokens, device="cpu", stop_ids=[])

    generate(model, tokenizer, prompts[:2], batch_size=2, **kwargs)  # warm-up (lazy imports, allocator)
    single_prompts = prompts[: args.single_prompts]
    t_batched = t_single = float("inf")
    for _ in range(max(1, args.repeats)):
        elapsed, batched = timed(
            lambda: generate(model, tokenizer, prompts, batch_size=args.batch_size, **kwargs)
        )
        t_batched = min(t_batched, elapsed)
        elapsed, single = timed(lambda: generate(model, tokenizer, single_prompts, batch_size=1, **kwargs))
        t_single = min(t_single, elapsed)
    same = batched[: len(single)] == single
    batched_tps = sum(g.n_tokens for g in batched) / t_batched
    single_tps = sum(g.n_tokens for g in single) / t_single
    result = {
        "model": f"llama hidden={args.hidden_size} layers={args.layers} "
        f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params)",
        "prompts": args.prompts,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "threads": torch.get_num_threads(),
        "batched_tokens_per_sec": round(batched_tps, 1),
        "single_tokens_per_sec": round(single_tps, 1),
        "ratio": round(batched_tps / single_tps, 2),
        "batched_equals_single": same,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"model: {result['model']}, {result['threads']} threads")
    print(
        f"batched (batch {args.batch_size}, {args.prompts} prompts): {result['batched_tokens_per_sec']} tokens/s"
    )
    print(f"one at a time ({len(single)} prompts):            {result['single_tokens_per_sec']} tokens/s")
    print(f"ratio batched / single: {result['ratio']}x   identical text: {same}")


if __name__ == "__main__":
    main()
