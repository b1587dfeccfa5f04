"""The loss: completion tokens only, padding-independent, accumulation-equivalent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers_models import make_tiny_model, make_tokenizer
from helpers_train import write_traces
from tunix_rt.data.loader import load_traces
from tunix_rt.train.batching import IGNORE_INDEX, collate, epoch_batches, micro_batches
from tunix_rt.train.tokenize import encode_prompt, tokenize_traces


@pytest.fixture(params=["gpt2", "llama"])
def setup(request, tmp_path):
    tokenizer = make_tokenizer()
    model = make_tiny_model(request.param, tokenizer, seed=1).eval()  # eval: no dropout noise
    traces = load_traces(write_traces(tmp_path / "d.jsonl", n=12)).traces
    data = tokenize_traces(traces, tokenizer, system_instruction="Show your work.", max_seq_length=256)
    return model, tokenizer, traces, data


def _loss_sum(model, input_ids, labels) -> torch.Tensor:
    logits = model(input_ids=input_ids).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), reduction="sum")


def test_prompt_tokens_never_carry_loss(setup) -> None:
    model, tokenizer, _traces, data = setup
    idx = np.arange(4)
    input_ids, labels = collate(data, idx, tokenizer.pad_token_id)
    for row, k in enumerate(idx):
        n_prompt, n = int(data.prompt_lengths[k]), int(data.lengths[k])
        assert (labels[row, :n_prompt] == IGNORE_INDEX).all()
        assert (labels[row, n_prompt:n] == input_ids[row, n_prompt:n]).all()
        assert (labels[row, n:] == IGNORE_INDEX).all()
        assert labels[row, n - 1] == tokenizer.eos_token_id  # EOS is learned
    # The gradient reaching the logits is zero at every position that predicts a prompt token.
    logits = model(input_ids=input_ids).logits
    logits.retain_grad()
    F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), reduction="sum").backward()
    for row, k in enumerate(idx):
        n_prompt = int(data.prompt_lengths[k])
        assert logits.grad[row, : n_prompt - 1].abs().sum() == 0
        assert logits.grad[row, n_prompt - 1].abs().sum() > 0  # predicts the first completion token


def test_prompt_ids_are_the_ids_evaluation_uses(setup) -> None:
    _, tokenizer, traces, data = setup
    from tunix_rt.train.render import render_prompt

    for k in range(len(data)):
        prompt = render_prompt(traces[data.source_index[k]].prompt, tokenizer, "Show your work.")
        n_prompt = int(data.prompt_lengths[k])
        assert data.example(k)[:n_prompt].tolist() == encode_prompt(tokenizer, prompt)


def test_padded_to_max_length_and_bucketed_batches_give_the_same_loss(setup) -> None:
    model, tokenizer, _, data = setup
    pad = tokenizer.pad_token_id
    idx = np.arange(len(data))
    n_tokens = int(data.completion_lengths[idx].sum())
    # One batch padded to max_seq_length, as the original did ...
    ids, labels = collate(data, idx, pad)
    width = 256
    ids = F.pad(ids, (0, width - ids.shape[1]), value=pad)
    labels = F.pad(labels, (0, width - labels.shape[1]), value=IGNORE_INDEX)
    padded = _loss_sum(model, ids, labels) / n_tokens
    # ... and length-sorted micro-batches padded only to their own longest example.
    bucketed = (
        sum(_loss_sum(model, *collate(data, m, pad)) for m in micro_batches(idx, data.lengths, 4)) / n_tokens
    )
    assert float(padded) == pytest.approx(float(bucketed), rel=1e-5)
    assert collate(data, micro_batches(idx, data.lengths, 4)[0], pad)[0].shape[1] < width


def test_too_long_examples_are_counted_not_cut(setup) -> None:
    _, tokenizer, traces, data = setup
    limit = int(np.median(data.lengths))
    short = tokenize_traces(traces, tokenizer, system_instruction="Show your work.", max_seq_length=limit)
    assert short.too_long > 0
    assert len(short) + short.too_long == len(traces)
    assert (short.lengths <= limit).all()
    for k in range(len(short)):
        assert short.example(k)[-1] == tokenizer.eos_token_id  # every kept example is whole


def test_epoch_order_is_deterministic_and_covers_every_example() -> None:
    lengths = np.random.default_rng(0).integers(5, 100, size=103)
    a = epoch_batches(lengths, 8, seed=3, epoch=2)
    b = epoch_batches(lengths, 8, seed=3, epoch=2)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert sorted(np.concatenate(a).tolist()) == list(range(103))
    c = epoch_batches(lengths, 8, seed=3, epoch=3)
    assert any((x != y).any() for x, y in zip(a, c, strict=False) if len(x) == len(y))
