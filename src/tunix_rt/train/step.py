"""The arithmetic of one optimizer step that a recipe's loop calls: a micro-batch's loss, the
gradient norm. Kept free of bookkeeping, so the hot path is plain to read and to time."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tunix_rt.train.batching import collate
from tunix_rt.train.lm_loss import completion_loss, output_head
from tunix_rt.train.runtime import autocast


def micro_batch_loss(
    model: Any,
    data: Any,
    micro: np.ndarray,
    pad_id: int,
    packed: bool,
    device: torch.device,
    compute_dtype: torch.dtype | None,
) -> torch.Tensor:
    """Summed cross-entropy over the micro-batch's completion tokens (normalised by the caller)."""
    if len(micro) == 0:
        # A rank with no examples at the tail of an epoch still joins the gradient all-reduce, with
        # a forward like any other (under autocast: a bf16 LoRA base feeds its adapters bf16).
        dummy = torch.full((1, 1), pad_id, device=device)
        with autocast(device.type, compute_dtype):
            return model(input_ids=dummy, use_cache=False).logits.sum() * 0.0
    batch = collate(data, micro, pad_id, packed=packed).to(device)
    with autocast(device.type, compute_dtype):
        if head_only_loss(model):
            # The LM head only at labelled positions: the same loss and gradients (train/lm_loss.py).
            return completion_loss(model, batch.input_ids, batch.labels, position_ids=batch.position_ids)[0]
        # use_cache=False: a training forward has no use for a KV cache (building one costs a
        # concatenation per layer), and transformers only reads packed position ids without one.
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
    labels = batch.labels
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), reduction="sum")


def head_only_loss(model: Any) -> bool:
    """Whether completion_loss serves this model: not when it is compiled (a hook added around a
    compiled graph is not traced into it) or scales its logits (train/lm_loss.output_head)."""
    if hasattr(model, "_orig_mod"):
        return False
    try:
        output_head(model)
    except ValueError:
        return False
    return True


def clip_grad_norm(model: Any, max_norm: float | None) -> torch.Tensor:
    """The total gradient norm (clipped to max_norm when set); no host sync."""
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm is None:
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
