"""Tiny random-init causal LMs with a real trained tokenizer, saved like a training run's final_model.

Built from config (no download): a BPE tokenizer trained by `tokenizers` on a few hundred
synthetic lines, wrapped as a `PreTrainedTokenizerFast` with BOS/EOS/PAD, and a 2-layer GPT-2 or
Llama. Reusable by any test: `make_tiny_model_dir(tmp_path / "model", arch="llama")`.
"""

from __future__ import annotations

import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def corpus_lines(n: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        lines.append(f"Question: What is {a} + {b}?")
        lines.append(f"1. Add {a} and {b} to get {a + b}.")
        lines.append(f"Answer: {a + b}")
    return lines


def make_tokenizer(vocab_size: int = 256) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def make_tiny_model(arch: str, tokenizer: PreTrainedTokenizerFast, seed: int = 0):
    import torch

    vocab = len(tokenizer)
    ids = dict(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if arch == "gpt2":
        config = AutoConfig.for_model(
            "gpt2", vocab_size=vocab, n_positions=256, n_embd=32, n_layer=2, n_head=2, **ids
        )
    elif arch in ("llama", "qwen2", "gemma", "gemma2"):
        # gemma2: alternating sliding-window layers; a window shorter than a packed row matters.
        extra = {"sliding_window": 16} if arch == "gemma2" else {}
        config = AutoConfig.for_model(
            arch,
            **extra,
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,  # hidden_size / heads; Gemma's default would be 256
            max_position_embeddings=256,
            **ids,
        )
    else:
        raise ValueError(f"unknown arch {arch!r}")
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def make_tiny_model_dir(path: Path, arch: str = "gpt2", seed: int = 0) -> Path:
    """Save a tiny model + tokenizer under path (a MODEL_DIR) and return path."""
    path = Path(path)
    tokenizer = make_tokenizer()
    model = make_tiny_model(arch, tokenizer, seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
