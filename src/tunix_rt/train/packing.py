"""Does this model keep packed examples apart? Measured on the model itself, before a run packs.

Packed rows (train.batching.collate) rely on the model turning restarting position ids into a
block-diagonal causal mask. transformers does this for the architectures built on its
create_causal_mask with eager or sdpa attention, but not everywhere: its flash-attention path reads
packed position ids only when a batch is a single row, and remote-code or older models may ignore
them. A model that ignores them lets an example attend to the one before it in its row: the loss
would be silently wrong. So before training, four examples are laid out by the very collate
function training uses (several rows, one shared, padding included), run under the training's
autocast, and each example's logits are compared with the logits it gets alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tunix_rt.train.batching import collate, packed_rows
from tunix_rt.train.runtime import autocast
from tunix_rt.train.tokenize import TokenizedDataset

# Mean |packed - alone| / mean |alone|, per example. Measured on tiny GPT-2/Llama/Qwen2/Gemma and
# the 10M benchmark GPT-2: bf16 rounding gives at most 3e-3, a model that mixes examples 6e-2 to
# 0.5 (fp32 gives 0 and the same mixing figures).
MIXING_THRESHOLD = 1e-2
# Laid out by collate as three 64-wide rows: [50], [40 + 20], [30], each with padding. More than
# one row matters: transformers' flash-attention path reads packed positions only in 1-row batches.
# (tests/test_train_packing.py checks this layout.)
CHECK_LENGTHS = (50, 40, 30, 20)


@torch.no_grad()
def packing_problem(model: Any, compute_dtype: torch.dtype | None) -> str | None:
    """None if packed rows give every example the logits it gets alone; otherwise why not.

    Draws no random numbers (dropout is off in eval mode and the ids are arithmetic), so the
    training RNG, and with it resume exactness, is untouched; the model's train/eval mode is restored.
    """
    check_lengths = _check_lengths(model)
    if check_lengths is None:
        return (
            "the model has too few positions to lay out the packed-sequence check (several rows, "
            "one shared), so packing is not verified"
        )
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        vocab = model.get_input_embeddings().num_embeddings
        examples = [(np.arange(1, n + 1) * (7919 + 104729 * i)) % vocab for i, n in enumerate(check_lengths)]
        lengths = np.array(check_lengths)
        data = TokenizedDataset(
            tokens=np.concatenate(examples).astype(np.int32),
            offsets=np.concatenate([[0], np.cumsum(lengths)]),
            prompt_lengths=np.ones(len(lengths), dtype=np.int64),
            source_index=np.arange(len(lengths)),
            too_long=0,
            max_seq_length=int(lengths.max()),
        )
        batch = collate(data, np.arange(len(lengths)), pad_id=0, packed=True).to(device)
        with autocast(device.type, compute_dtype):
            packed = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
            worst = 0.0
            for example in examples:
                ids = torch.as_tensor(example, device=device)
                alone = model(input_ids=ids[None], use_cache=False).logits[0].float()
                row, start = _where(batch.position_ids, batch.input_ids, ids)
                got = packed[row, start : start + len(ids)].float()
                worst = max(worst, float((got - alone).abs().mean() / alone.abs().mean().clamp_min(1e-12)))
    except Exception as exc:  # reported as the reason for padded rows: the log and manifest show it
        return f"the packed-sequence check could not run on this model ({type(exc).__name__}: {exc})"
    finally:
        model.train(was_training)
    if worst > MIXING_THRESHOLD:
        return (
            f"this model's attention lets packed examples see each other (logits moved by {worst:.1%} "
            "in a packed row), so packing would change the loss"
        )
    return None


def _check_lengths(model: Any) -> tuple[int, ...] | None:
    """CHECK_LENGTHS, scaled down for a model with fewer than 64 positions (a scratch model sized to
    a short max_seq_length), or None when no layout with several rows and a shared one fits."""
    config = getattr(model, "config", None)
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit >= max(CHECK_LENGTHS):
        return CHECK_LENGTHS
    lengths = tuple(max(1, n * limit // 64) for n in CHECK_LENGTHS)
    _, rows = packed_rows(np.array(lengths))
    if len(rows) < 2 or not any(len(row) >= 2 for row in rows):
        return None
    return lengths


def _where(positions: torch.Tensor, input_ids: torch.Tensor, ids: torch.Tensor) -> tuple[int, int]:
    """(row, start) of an example in the packed batch: a position-0 start followed by its ids."""
    for row, col in torch.nonzero(positions == 0).tolist():
        if torch.equal(input_ids[row, col : col + len(ids)], ids):
            return row, col
    raise AssertionError("an example is missing from its packed batch")
