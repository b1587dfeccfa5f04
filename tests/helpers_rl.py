"""A tiny model that already answers in the trained shape, with a random digit: GRPO's test bed.

`make_digit_model` teaches a tiny GPT-2 (tests/helpers_models.py) by plain teacher forcing to
answer any "Question: ...\\nReasoning:\\n" prompt with "Answer: D<eos>", D a random digit
(a 400-token BPE, so "Answer:" is a token or two). Sampled at temperature 1 it names each digit about a tenth of the time, so a correctness
reward that wants one digit starts near 0.1 and can rise within a few GRPO steps.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from helpers_models import make_tiny_model, make_tokenizer
from tunix_rt.train.render import render_prompt


def questions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"What is {rng.randint(0, 99)} + {rng.randint(0, 99)}?" for _ in range(n)]


def make_digit_model(path: Path, steps: int = 40, seed: int = 0) -> Path:
    tokenizer = make_tokenizer(vocab_size=400)
    model = make_tiny_model("gpt2", tokenizer, seed=seed)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this tiny model runs ~10x faster on one thread on a shared 2-core CPU
    try:
        _fit(model, tokenizer, optimizer, rng, steps)
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _fit(model, tokenizer, optimizer, rng: random.Random, steps: int) -> None:
    for _ in range(steps):
        rows = []
        for question in questions(16, seed=rng.randint(0, 10**6)):
            prompt = tokenizer(render_prompt(question), add_special_tokens=False).input_ids
            completion = tokenizer(f"Answer: {rng.randint(0, 9)}", add_special_tokens=False).input_ids
            rows.append((prompt, [*completion, tokenizer.eos_token_id]))
        width = max(len(p) + len(c) for p, c in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        labels = torch.full((len(rows), width), -100)
        for i, (p, c) in enumerate(rows):
            ids[i, : len(p) + len(c)] = torch.tensor(p + c)
            labels[i, len(p) : len(p) + len(c)] = torch.tensor(c)
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def write_digit_prompts(path: Path, n: int, answer: str = "7", seed: int = 1) -> Path:
    """An eval-set file whose every question has the same gold answer."""
    records = [
        {
            "id": f"q{k}",
            "prompt": q,
            "expected_answer": answer,
            "section": "core",
            "category": "digit",
            "difficulty": "easy",
        }
        for k, q in enumerate(questions(n, seed=seed))
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
