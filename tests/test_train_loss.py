"""The loss: completion tokens only, padding-independent, accumulation-equivalent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers_models import make_tiny_model, make_tokenizer
from helpers_train import write_traces
from tunix_rt.data.loader import load_traces
from tunix_rt.train.batching import IGNORE_INDEX, Batch, collate, epoch_batches, micro_batches
from tunix_rt.train.tokenize import encode_prompt, tokenize_traces


@pytest.fixture(params=["gpt2", "llama"])
def setup(request, tmp_path):
    tokenizer = make_tokenizer()
    model = make_tiny_model(request.param, tokenizer, seed=1).eval()  # eval: no dropout noise
    traces = load_traces(write_traces(tmp_path / "d.jsonl", n=12)).traces
    data = tokenize_traces(traces, tokenizer, system_instruction="Show your work.", max_seq_length=256)
    return model, tokenizer, traces, data


def _loss_sum(model, batch: Batch) -> torch.Tensor:
    logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
    labels = batch.labels
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), reduction="sum")


def test_prompt_tokens_never_carry_loss(setup) -> None:
    model, tokenizer, _traces, data = setup
    idx = np.arange(4)
    batch = collate(data, idx, tokenizer.pad_token_id, packed=False)
    input_ids, labels = batch.input_ids, batch.labels
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


@torch.no_grad()
def test_padded_to_max_length_padded_and_packed_micro_batches_give_the_same_loss(setup) -> None:
    model, tokenizer, _, data = setup
    pad = tokenizer.pad_token_id
    idx = np.arange(len(data))
    n_tokens = int(data.completion_lengths[idx].sum())
    # One batch padded to max_seq_length, as the original did ...
    batch = collate(data, idx, pad, packed=False)
    width = 256
    ids = F.pad(batch.input_ids, (0, width - batch.input_ids.shape[1]), value=pad)
    labels = F.pad(batch.labels, (0, width - batch.labels.shape[1]), value=IGNORE_INDEX)
    reference = float(_loss_sum(model, Batch(ids, labels, None)) / n_tokens)
    # ... length-sorted micro-batches padded only to their own longest example ...
    micros = micro_batches(idx, data.lengths, 4)
    padded = sum(_loss_sum(model, collate(data, m, pad, packed=False)) for m in micros) / n_tokens
    # ... and the same micro-batches packed several examples to a row.
    packed_batches = [collate(data, m, pad, packed=True) for m in micros]
    packed = sum(_loss_sum(model, b) for b in packed_batches) / n_tokens
    assert float(padded) == pytest.approx(reference, rel=1e-5)
    assert float(packed) == pytest.approx(reference, rel=1e-5)
    assert collate(data, micros[0], pad, packed=False).input_ids.shape[1] < width
    whole = collate(data, idx, pad, packed=True)
    assert float(_loss_sum(model, whole) / n_tokens) == pytest.approx(reference, rel=1e-5)


def test_packed_rows_give_the_gradients_of_padded_rows(setup) -> None:
    model, tokenizer, _, data = setup
    idx = np.arange(len(data))
    grads = []
    for packed in (False, True):
        model.zero_grad()
        _loss_sum(model, collate(data, idx, tokenizer.pad_token_id, packed=packed)).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


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
