"""Optimizer and learning-rate schedule."""

from __future__ import annotations

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


def build_scheduler(optimizer: torch.optim.Optimizer, name: str, warmup_steps: int, total_steps: int) -> Any:
    """Linear warmup, then linear decay to 0, cosine decay to 0, or constant."""
    from transformers import get_scheduler

    scheduler_name = "constant_with_warmup" if name == "constant" else name
    return get_scheduler(
        scheduler_name,
        optimizer,
        num_warmup_steps=min(warmup_steps, total_steps),
        num_training_steps=total_steps,
    )
