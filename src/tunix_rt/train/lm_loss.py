"""Completion-only loss: the LM head runs only where a token carries a label.

The head (49k vocabulary for SmolLM2) is about a fifth of a small model's FLOPs and its logits
the largest activation of a step, yet only completion tokens carry loss. `completion_loss` takes
the same micro-batch as the full-logits path in train/loop.py (`_micro_batch_loss`: logits at
position t predict the label at t+1, cross-entropy in fp32, summed) and gives the same loss and
gradients: it gathers the final hidden states at the positions whose next label is real and
applies the head there only.

It still calls the model's own forward (not its decoder alone): DDP/FSDP wrappers, torch.compile
and PEFT see an ordinary call, and the model's own logit post-processing (Gemma 2's final
soft-capping) runs on the gathered logits. For the duration of the call a pre-hook on the output
embeddings replaces the head's input (batch, seq, hidden) by the gathered rows (n, hidden).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from tunix_rt.train.batching import IGNORE_INDEX

# Forwards that transform the head's output by more than an elementwise function (or that
# reshape it) cannot take gathered rows; these attributes mark the ones known here.
_UNSUPPORTED_CONFIG = ("logit_scale", "logits_scaling", "output_multiplier_scale")


def output_head(model: Any) -> torch.nn.Module:
    """The LM head of a plain, PEFT-wrapped, DDP-wrapped or compiled causal LM."""
    inner = model
    for attr in ("module", "_orig_mod"):  # DDP/FSDP1 and torch.compile wrappers
        inner = getattr(inner, attr, inner)
    if hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    head = inner.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(inner).__name__} has no output embeddings (LM head)")
    for attr in _UNSUPPORTED_CONFIG:
        if getattr(inner.config, attr, None) not in (None, 1, 1.0):
            raise ValueError(f"{type(inner).__name__} scales its logits ({attr}): use the full-logits loss")
    return head


def completion_loss(
    model: Any,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    position_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """(summed fp32 cross-entropy over labelled next tokens, their count), the head run only there.

    Same inputs and autocast context as the full-logits path: call it inside the loop's
    torch.autocast. Labels are IGNORE_INDEX where no loss is taken.
    """
    keep = labels[:, 1:] != IGNORE_INDEX
    targets = labels[:, 1:][keep]
    with head_only_at(model, keep):
        logits = model(
            input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask, use_cache=False
        ).logits
    loss_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
    return loss_sum, int(targets.numel())


@contextlib.contextmanager
def head_only_at(model: Any, keep: torch.Tensor) -> Iterator[None]:
    """For the forwards inside: the LM head sees only the final hidden states at positions t where
    keep[:, t] (keep is [batch, seq - 1]: position t predicts token t + 1), so the model's logits
    come out as (n, vocab) rows in row-major order of keep, not (batch, seq, vocab)."""

    def gather(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        hidden = args[0]
        return (hidden[:, :-1][keep], *args[1:])

    handle = output_head(model).register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()
