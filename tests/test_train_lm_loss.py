"""completion_loss (head only at labelled positions) equals the full-logits loss, value and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers_models import make_tiny_model, make_tokenizer
from tunix_rt.train.batching import IGNORE_INDEX
from tunix_rt.train.lm_loss import completion_loss, output_head
from tunix_rt.train.lora import LoraConfig, apply_lora

ARCHS = ["llama", "qwen2", "gemma", "gemma2", "gpt2"]


def packed_batch(vocab: int, packed: bool, seed: int = 0):
    """Two rows; packed: three examples with restarting positions; prompts and padding unlabelled."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (2, 24), generator=g)
    labels = ids.clone()
    if packed:
        # row 0: examples [0,10) prompt 4, [10,24) prompt 6; row 1: [0,18) prompt 5, then padding
        for row, start, prompt in ((0, 0, 4), (0, 10, 6), (1, 0, 5)):
            labels[row, start : start + prompt] = IGNORE_INDEX
        labels[1, 18:] = IGNORE_INDEX
        pos = torch.tensor([list(range(10)) + list(range(14)), list(range(18)) + [0] * 6])
        return ids, labels, pos
    labels[:, :5] = IGNORE_INDEX
    labels[1, 15:] = IGNORE_INDEX
    return ids, labels, None


def full_logits_loss(model, ids, labels, pos):
    # The semantics of train/loop.py's _micro_batch_loss.
    logits = model(input_ids=ids, position_ids=pos, use_cache=False).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), reduction="sum")


def grads_after(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("packed", [True, False])
def test_completion_loss_equals_full_logits(arch, packed):
    tok = make_tokenizer()
    model = make_tiny_model(arch, tok, seed=1)
    model.eval()  # no dropout: both paths must see the same network (gradients flow in eval mode too)
    if arch == "gemma2":
        assert model.config.final_logit_softcapping  # the post-processing must run on gathered rows
    ids, labels, pos = packed_batch(len(tok), packed)
    full = full_logits_loss(model, ids, labels, pos)
    full_grads = grads_after(model, full)
    part, n = completion_loss(model, ids, labels, position_ids=pos)
    part_grads = grads_after(model, part)
    assert n == int((labels[:, 1:] != IGNORE_INDEX).sum())
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-5)
    assert full_grads.keys() == part_grads.keys() and len(full_grads) > 5
    for name, grad in full_grads.items():
        torch.testing.assert_close(part_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # The hook is gone: a later plain forward returns logits for every position.
    assert model(input_ids=ids).logits.shape[:2] == ids.shape


def test_completion_loss_on_peft_model_under_bf16_autocast():
    tok = make_tokenizer()
    model = apply_lora(make_tiny_model("llama", tok, seed=2), LoraConfig(r=4), torch.bfloat16)
    ids, labels, pos = packed_batch(len(tok), packed=True, seed=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        full = full_logits_loss(model, ids, labels, pos)
    full_grads = grads_after(model, full)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        part, _ = completion_loss(model, ids, labels, position_ids=pos)
    part_grads = grads_after(model, part)
    assert part.dtype == torch.float32
    # bf16 matmuls over a gathered matrix may block their sums differently: bf16-level tolerance.
    torch.testing.assert_close(part, full, rtol=1e-2, atol=1e-2)
    assert all("lora_" in name for name in full_grads) and full_grads.keys() == part_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(part_grads[name], grad, rtol=5e-2, atol=1e-3, msg=name)


def test_a_batch_without_labels_gives_zero_loss_that_still_backpropagates():
    tok = make_tokenizer()
    model = make_tiny_model("llama", tok)
    ids = torch.randint(4, len(tok), (1, 8))
    loss, n = completion_loss(model, ids, torch.full_like(ids, IGNORE_INDEX))
    assert n == 0 and float(loss.detach()) == 0.0
    loss.backward()  # a rank with nothing to learn still joins the gradient all-reduce


def test_output_head_refuses_models_that_scale_their_logits():
    tok = make_tokenizer()
    model = make_tiny_model("llama", tok)
    model.config.logit_scale = 0.5
    with pytest.raises(ValueError, match="logit_scale"):
        output_head(model)
