"""Validation while training: held-out examples, their loss every `training.eval_steps`, the best step.

`data.validation` is either a fraction of the training traces (drawn once with training.seed and
left out of training: the model never sees them) or a dataset spec (file, directory or bundled
key) used whole. The loss is the training loss's own arithmetic (micro_batch_loss, completion
tokens only, the same autocast) in eval mode under no_grad: no dropout, no random numbers drawn,
so a run with validation takes the very same training steps as one without, and resume stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tunix_rt.train.step import micro_batch_loss

VALIDATION_KEY = "validation_loss"


@dataclass(frozen=True)
class Split:
    train: list[Any]
    validation: list[Any]
    source: str
    """How the validation traces were chosen, for the log and manifest."""


def split_traces(traces: list[Any], spec: float | str | None, seed: int, *, skip_invalid: bool) -> Split:
    """Training and validation traces as `data.validation` says (no validation: an empty list)."""
    if spec is None:
        return Split(list(traces), [], "none")
    if isinstance(spec, float):
        n_val = max(1, math.floor(len(traces) * spec))
        if n_val >= len(traces):
            return Split(list(traces), [], f"none: {len(traces)} traces leave nothing to hold out")
        held = set(np.random.default_rng(seed).permutation(len(traces))[:n_val].tolist())
        train = [t for i, t in enumerate(traces) if i not in held]
        return Split(train, [t for i, t in enumerate(traces) if i in held], f"{spec:g} of the dataset")
    from tunix_rt.data.loader import load_traces
    from tunix_rt.data.resolver import resolve_dataset

    loaded = load_traces(resolve_dataset(spec).path, skip_invalid=skip_invalid)
    return Split(list(traces), list(loaded.traces), f"{spec} (sha256 {loaded.sha256[:12]})")


def validation_loss(
    model: Any, data: Any, pad_id: int, packed: bool, device: torch.device,
    compute_dtype: torch.dtype | None, batch_size: int,
) -> float:  # fmt: skip
    """Mean cross-entropy per completion token over every validation example (train mode restored)."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    order = np.arange(len(data))
    try:
        with torch.no_grad():
            for start in range(0, len(data), batch_size):
                chunk = order[start : start + batch_size]
                total += micro_batch_loss(model, data, chunk, pad_id, packed, device, compute_dtype).double()
    finally:
        model.train(was_training)
    return float(total) / max(1, int(data.completion_lengths.sum()))


def best_step(metrics: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The logged step with the lowest validation loss (the earliest on a tie), or None."""
    rows = [m for m in metrics if isinstance(m.get(VALIDATION_KEY), (int, float))]
    if not rows:
        return None
    best = min(rows, key=lambda m: (m[VALIDATION_KEY], m["step"]))
    return {"step": best["step"], VALIDATION_KEY: best[VALIDATION_KEY]}
