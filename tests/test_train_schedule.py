"""The LR schedule: the numbers transformers' get_scheduler gives, saved with the checkpoint, and
continued (not restarted) when a resume changes the total."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import get_scheduler

from tunix_rt.train.optim import build_scheduler, continue_schedule

HF_NAMES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def lrs(scheduler, optimizer, n: int) -> list[float]:
    out = []
    for _ in range(n):
        out.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return out


def fresh(name: str, warmup: int, total: int):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    return optimizer, build_scheduler(optimizer, name, warmup, total)


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
@pytest.mark.parametrize(("warmup", "total"), [(0, 10), (3, 10), (5, 5), (12, 10)])
def test_the_schedule_is_transformers_own(name, warmup, total) -> None:
    optimizer, ours = fresh(name, warmup, total)
    reference_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    reference = get_scheduler(
        HF_NAMES[name], reference_opt, num_warmup_steps=min(warmup, total), num_training_steps=total
    )
    assert lrs(ours, optimizer, total + 2) == lrs(reference, reference_opt, total + 2)


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
def test_the_schedule_travels_with_the_checkpoint_and_continues(name, tmp_path) -> None:
    optimizer, scheduler = fresh(name, 2, 10)
    lrs(scheduler, optimizer, 6)
    continue_schedule(scheduler, 20, 6)  # extended once: the next resume must get this back
    lrs(scheduler, optimizer, 3)
    torch.save(scheduler.state_dict(), tmp_path / "scheduler.pt")

    restored_opt, restored = fresh(name, 2, 20)  # rebuilt for the run's current total
    restored.load_state_dict(torch.load(tmp_path / "scheduler.pt", weights_only=True))
    assert continue_schedule(restored, 20, 9) is None  # same total: nothing to change, exact
    assert lrs(restored, restored_opt, 12) == lrs(scheduler, optimizer, 12)


def test_an_extension_inside_warmup_finishes_the_warmup_then_decays_to_the_new_end() -> None:
    optimizer, scheduler = fresh("linear", 4, 10)
    lrs(scheduler, optimizer, 2)
    change = continue_schedule(scheduler, 20, 2)
    assert change is not None and change["lr_at_step"] == pytest.approx(0.05)
    seq = dict(zip(range(2, 21), lrs(scheduler, optimizer, 19), strict=True))  # step -> LR
    assert [seq[2], seq[3], seq[4]] == pytest.approx([0.05, 0.075, 0.1])  # the ramp goes on to the peak
    assert seq[16] == pytest.approx(0.1 * (20 - 16) / 16)  # then decays to 0 at step 20
    assert seq[20] == 0.0


def test_a_second_extension_continues_the_first() -> None:
    optimizer, scheduler = fresh("cosine", 0, 10)
    lrs(scheduler, optimizer, 5)
    continue_schedule(scheduler, 20, 5)
    lrs(scheduler, optimizer, 5)
    at_10 = scheduler.get_last_lr()[0]
    assert at_10 == pytest.approx(
        0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)) * 0.5 * (1 + math.cos(math.pi * 5 / 15))
    )
    change = continue_schedule(scheduler, 30, 10)
    assert change["lr_at_step"] == pytest.approx(at_10)
    nxt = lrs(scheduler, optimizer, 2)
    assert nxt[0] == pytest.approx(at_10) and nxt[1] == pytest.approx(
        at_10 * 0.5 * (1 + math.cos(math.pi / 20))
    )
