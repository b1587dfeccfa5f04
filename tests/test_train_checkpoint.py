"""Checkpoint contents beyond the model: the float16 loss scaler."""

from __future__ import annotations

import pytest
import torch

from helpers_models import make_tiny_model, make_tokenizer
from tunix_rt.errors import RunDirError
from tunix_rt.train import checkpoint as ckpt


def _parts():
    tokenizer = make_tokenizer()
    model = make_tiny_model("llama", tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return tokenizer, model, optimizer, scheduler


def _scaler(scale: float | None = None) -> torch.amp.GradScaler:
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    scaler.scale(torch.ones(()))  # the scale tensor is created lazily, on first use
    if scale is not None:
        scaler.update(new_scale=scale)
    return scaler


def test_a_float16_run_resumes_with_its_loss_scale(tmp_path) -> None:
    tokenizer, model, optimizer, scheduler = _parts()
    state = {"step": 3}
    saved = _scaler(scale=512.0)
    path = ckpt.save_checkpoint(
        tmp_path, model=model, tokenizer=tokenizer, optimizer=optimizer, scheduler=scheduler,
        state=state, keep=None, scaler=saved,
    )  # fmt: skip
    restored = _scaler()
    assert restored.get_scale() == 2.0**16
    ckpt.load_training_state(path, model, optimizer, scheduler, scaler=restored)
    assert restored.get_scale() == 512.0
    assert restored.state_dict()["_growth_tracker"] == saved.state_dict()["_growth_tracker"]

    # A float16 checkpoint without its scale cannot continue the run exactly: refused, not guessed.
    (path / ckpt.SCALER_FILE).unlink()
    with pytest.raises(RunDirError, match="loss scale"):
        ckpt.load_training_state(path, model, optimizer, scheduler, scaler=_scaler())


def test_bf16_and_fp32_checkpoints_hold_no_scaler(tmp_path) -> None:
    tokenizer, model, optimizer, scheduler = _parts()
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    path = ckpt.save_checkpoint(
        tmp_path, model=model, tokenizer=tokenizer, optimizer=optimizer, scheduler=scheduler,
        state={"step": 1}, keep=None, scaler=disabled,
    )  # fmt: skip
    assert not (path / ckpt.SCALER_FILE).exists()
    ckpt.load_training_state(path, model, optimizer, scheduler, scaler=disabled)
