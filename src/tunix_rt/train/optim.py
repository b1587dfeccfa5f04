"""Optimizer and learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any

import torch


def build_optimizer(
    model: Any, name: str, lr: float, weight_decay: float, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW (fused kernel on CPU and CUDA) or Adafactor; no weight decay on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if name == "adafactor":
        # torch's own Adafactor (factored second moments: memory ~ rows + cols per matrix).
        return torch.optim.Adafactor(groups, lr=lr)
    # The fused kernel updates every tensor in one pass; it exists for CPU and CUDA.
    fused = device.type in {"cpu", "cuda"}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=fused)


class Schedule:
    """The learning-rate factor at each step (LambdaLR multiplies the base LR by it).

    Linear warmup to 1, then linear decay to 0 at `total_steps`, cosine decay to 0, or constant:
    the same numbers as transformers' get_scheduler. It is a callable object, not a function, so
    LambdaLR's state_dict saves its fields with the checkpoint: a resume gets back the very
    schedule it was trained under.

    A resume that changes the total (`continue_to`) continues from the factor at the resume step
    and decays from there to the new total (linear: straight to 0; cosine: half a cosine over the
    remaining steps; constant stays). Warmup is not repeated.
    """

    def __init__(self, name: str, warmup_steps: int, total_steps: int) -> None:
        self.name = name
        self.warmup_steps = min(warmup_steps, total_steps)
        self.total_steps = total_steps
        self.anchor_step: int | None = None
        """Set by continue_to: the step the current decay starts from, at `anchor_factor`."""
        self.anchor_factor: float | None = None

    def __call__(self, step: int) -> float:
        if self.anchor_step is not None and step >= self.anchor_step:
            return self._continued(step)
        if step < self.warmup_steps:
            return float(step) / float(max(1, self.warmup_steps))
        span = float(max(1, self.total_steps - self.warmup_steps))
        if self.name == "linear":
            return max(0.0, float(self.total_steps - step) / span)
        if self.name == "cosine":
            progress = float(step - self.warmup_steps) / span
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        return 1.0

    def _continued(self, step: int) -> float:
        start, factor = self.anchor_step, self.anchor_factor
        assert start is not None and factor is not None
        span = float(max(1, self.total_steps - start))
        if self.name == "linear":
            return factor * max(0.0, float(self.total_steps - step) / span)
        if self.name == "cosine":
            return factor * 0.5 * (1.0 + math.cos(math.pi * min(1.0, float(step - start) / span)))
        return factor

    def continue_to(self, total_steps: int, step: int) -> dict[str, Any] | None:
        """Re-aim the schedule at a new total from `step` on; what changed, or None if nothing did."""
        if total_steps == self.total_steps:
            return None
        old_total, factor = self.total_steps, self(step)
        self.total_steps = total_steps
        if step >= self.warmup_steps:
            # Within warmup the ramp does not depend on the total, so only the total changes.
            self.anchor_step, self.anchor_factor = step, factor
        return {"total_steps": [old_total, total_steps], "from_step": step, "lr_factor_at_step": factor}


def build_scheduler(optimizer: torch.optim.Optimizer, name: str, warmup_steps: int, total_steps: int) -> Any:
    """Linear warmup, then linear decay to 0, cosine decay to 0, or constant (see Schedule)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, Schedule(name, warmup_steps, total_steps))


def continue_schedule(scheduler: Any, total_steps: int, step: int) -> dict[str, Any] | None:
    """After a resume restored `scheduler`: continue it to a new total (see Schedule.continue_to).

    Returns what changed for the manifest, with the learning rate at the resume step, or None when
    the total is the one the run was trained for (then the resume is exact).
    """
    change = scheduler.lr_lambdas[0].continue_to(total_steps, step)
    for schedule in scheduler.lr_lambdas[1:]:
        schedule.continue_to(total_steps, step)
    if change is not None:
        change["lr_at_step"] = scheduler.get_last_lr()[0]
    return change
